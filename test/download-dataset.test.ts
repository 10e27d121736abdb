/** ensureDataset against a local HTTP server serving a small 17flowers-style archive built from fixture images. */
import test from 'ava';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { bundledChecksumsFile, ensureDataset, labelsCsv, parseSha256Sums } from '../src/download/index.js';
import { startFileServer, type FileServer } from './helpers/file-server.js';
import { flowerImage, flowersDir } from '../bench/fixtures.js';

const picked = [1, 80, 81, 700, 1360];
const names = picked.map((n) => `image_${String(n).padStart(4, '0')}.jpg`);

let server: FileServer;
let root: string;
test.before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-ds-serve-'));
  // An archive laid out like Oxford's: jpg/image_NNNN.jpg plus jpg/files.txt.
  const src = path.join(root, 'src');
  fs.mkdirSync(path.join(src, 'jpg'), { recursive: true });
  picked.forEach((n, i) => fs.copyFileSync(flowerImage(n), path.join(src, 'jpg', names[i])));
  fs.writeFileSync(path.join(src, 'jpg', 'files.txt'), names.join('\n'));
  await tar.c({ gzip: true, file: path.join(root, '17flowers.tgz'), cwd: src }, ['jpg']);
  // The same, with one image's bytes changed.
  fs.appendFileSync(path.join(src, 'jpg', names[2]), 'tampered');
  await tar.c({ gzip: true, file: path.join(root, 'tampered.tgz'), cwd: src }, ['jpg']);
  fs.writeFileSync(path.join(root, 'garbage.tgz'), 'this is not a gzip file');
  // The subset of the real checksums for the picked images.
  const all = fs.readFileSync(path.join(flowersDir, 'SHA256SUMS'), 'utf8').split('\n');
  fs.writeFileSync(path.join(root, 'SUBSET.SHA256SUMS'), all.filter((line) => names.some((n) => line.endsWith(`  ${n}`))).join('\n') + '\n');
  server = await startFileServer(root);
});
test.after.always(() => server?.close());

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test.serial('ensureDataset downloads, checks and unpacks the archive into the fixture layout, once', async (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-ds-'));
  const checksums = path.join(root, 'SUBSET.SHA256SUMS');
  let lastProgress = 0;
  const dir = await ensureDataset({
    cacheDir: cache,
    url: `${server.url}/17flowers.tgz`,
    checksums,
    onProgress: (p) => {
      lastProgress = p.received;
    },
  });
  t.is(dir, path.join(cache, 'datasets', '17flowers'));
  t.is(lastProgress, fs.statSync(path.join(root, '17flowers.tgz')).size);
  t.deepEqual(fs.readdirSync(path.join(dir, 'jpg')).sort(), names);
  for (const [i, n] of picked.entries()) t.is(sha(path.join(dir, 'jpg', names[i])), sha(flowerImage(n)));
  t.is(
    fs.readFileSync(path.join(dir, 'labels.csv'), 'utf8'),
    [
      'file,class_id,class_name',
      'jpg/image_0001.jpg,0,daffodil',
      'jpg/image_0080.jpg,0,daffodil',
      'jpg/image_0081.jpg,1,snowdrop',
      'jpg/image_0700.jpg,8,fritillary',
      'jpg/image_1360.jpg,16,pansy',
    ].join('\n') + '\n',
  );
  t.is(fs.readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8'), fs.readFileSync(checksums, 'utf8'));
  // The archive is gone, and nothing half-made is left beside the dataset.
  t.deepEqual(fs.readdirSync(path.join(cache, 'datasets')), ['17flowers']);
  t.deepEqual(fs.readdirSync(path.join(cache, 'downloads')), []);

  const requests = server.requests.length;
  t.is(await ensureDataset({ cacheDir: cache, url: `${server.url}/17flowers.tgz`, checksums }), dir);
  t.is(server.requests.length, requests);
});

test.serial('$FLOWER_NATIVE_MIRROR points the default download address at a mirror', async (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-ds-'));
  const before = server.requests.length;
  process.env.FLOWER_NATIVE_MIRROR = server.url;
  try {
    await ensureDataset({ cacheDir: cache, checksums: path.join(root, 'SUBSET.SHA256SUMS') });
  } finally {
    delete process.env.FLOWER_NATIVE_MIRROR;
  }
  t.deepEqual(
    server.requests.slice(before).map((r) => r.path),
    ['/17flowers.tgz'],
  );
  t.is(fs.readdirSync(path.join(cache, 'datasets', '17flowers', 'jpg')).length, names.length);
});

test.serial('an archive that fails the checksums (or does not unpack) is deleted and no dataset appears', async (t) => {
  for (const [archive, reason] of [
    ['tampered.tgz', /image_0081\.jpg has the wrong sha256/],
    ['garbage.tgz', /cannot unpack it/],
  ] as const) {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-ds-'));
    const err = await t.throwsAsync(ensureDataset({ cacheDir: cache, url: `${server.url}/${archive}`, checksums: path.join(root, 'SUBSET.SHA256SUMS') }));
    t.regex(err.message, new RegExp(`${archive}: the downloaded archive is damaged: `));
    t.regex(err.message, reason);
    t.regex(err.message, /it was deleted, run again to download it anew/);
    t.deepEqual(fs.readdirSync(path.join(cache, 'datasets')), []);
    t.deepEqual(fs.readdirSync(path.join(cache, 'downloads')), []);
  }
});

test("the bundled checksum list is the fixture's, and labels.csv matches the fixture's", (t) => {
  const bundled = fs.readFileSync(bundledChecksumsFile(), 'utf8');
  t.is(bundled, fs.readFileSync(path.join(flowersDir, 'SHA256SUMS'), 'utf8'));
  const sums = parseSha256Sums(bundled, bundledChecksumsFile());
  t.is(sums.size, 1360);
  t.is(labelsCsv(sums.keys()), fs.readFileSync(path.join(flowersDir, 'labels.csv'), 'utf8'));
  t.throws(() => parseSha256Sums('abc  x.jpg\n', 'SUMS'), { message: /^SUMS:1: not a "<sha256> {2}<file>" line/ });
});
