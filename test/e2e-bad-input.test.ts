/** A folder mixing good images, unusual-but-valid ones and broken files: the run goes on and says why each file was skipped. */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { Workspace } from '../src/store/index.js';
import { makeDataDir, modelDir, runCli, tempDir, writeBadFiles } from './e2e-helpers.js';
import { flowerImage } from '../bench/fixtures.js';

test('good, odd and broken files together: the good and odd ones are indexed, each broken one is listed with its reason, exit 0', async (t) => {
  const data = await makeDataDir([1, 81, 161]);
  const bad = await writeBadFiles(data);
  // Valid but unusual encodings must index like any photo.
  const odd = path.join(data, 'odd');
  await fs.mkdir(odd);
  await sharp(flowerImage(2)).grayscale().png().toFile(path.join(odd, 'gray.png'));
  await sharp(flowerImage(3)).ensureAlpha(0.5).png().toFile(path.join(odd, 'alpha.png'));
  await sharp(flowerImage(4)).toColourspace('cmyk').jpeg().toFile(path.join(odd, 'cmyk.jpg'));
  await sharp(flowerImage(5)).toColourspace('rgb16').png().toFile(path.join(odd, 'deep16.png'));
  await fs.writeFile(path.join(data, 'README.txt'), 'not picked up: not an image extension\n');
  const workspace = path.join(await tempDir('ws'), 'index');

  const result = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', workspace]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^indexed 7 images/m);
  t.regex(result.stdout, new RegExp(`skipped: ${bad.length}, image files found: ${7 + bad.length}`));
  for (const { file, reason } of bad) {
    const line = result.stdout.split('\n').find((l) => l.startsWith(`  ${file}: `));
    t.truthy(line, `${file} is listed`);
    t.regex(line!, reason);
  }
  const ws = Workspace.openForRead(workspace);
  try {
    t.is(ws.docCount, 7);
    t.deepEqual(
      ws
        .docs()
        .map((doc) => path.relative(data, doc.path))
        .sort(),
      ['jpg/image_0001.jpg', 'jpg/image_0081.jpg', 'jpg/image_0161.jpg', 'odd/alpha.png', 'odd/cmyk.jpg', 'odd/deep16.png', 'odd/gray.png'],
    );
  } finally {
    ws.close();
  }
});

test('a folder with only broken files exits non-zero, listing each', async (t) => {
  const data = await tempDir('bad-only');
  const bad = await writeBadFiles(data);
  const result = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', path.join(data, 'ws')]);
  t.is(result.code, 1);
  t.regex(result.stdout, /^indexed 0 images/m);
  for (const { file } of bad) t.true(result.stdout.includes(`  ${file}: `));
  t.regex(result.stderr, /no image in the folder could be indexed/);
});

test('an empty folder exits non-zero', async (t) => {
  const data = await tempDir('empty');
  const result = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', path.join(data, 'ws'), '--quiet']);
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.regex(result.stderr, /no image in the folder could be indexed \(no image files found\)/);
});
