/**
 * Damage is found and named: flipped bytes and NaN/zero rows in chunks.npy (by doc, through the
 * per-doc checksums), a garbage page in index.sqlite (quick_check); a writer refuses to append to a
 * damaged index and says how to repair it; the repair drops exactly the damaged docs.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { NoIndexError } from '../src/errors.js';
import { NPY_DATA_OFFSET, Workspace } from '../src/store/index.js';
import { runCli } from './e2e-helpers.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';

const DIM = 16;
const model = testModel(DIM);
const open = (dir: string) => Workspace.openForWrite(dir, { model, chunking: testChunking });

function build(count: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-verify-'));
  const ws = open(dir);
  for (let i = 0; i < count; i += 4) ws.addDocs(Array.from({ length: Math.min(4, count - i) }, (_, k) => makeDoc(i + k, DIM)));
  ws.close();
  return dir;
}

/** Overwrite float32 values of chunks.npy in place. */
function pokeRow(dir: string, row: number, values: (k: number, old: number) => number): void {
  const fd = fs.openSync(path.join(dir, 'chunks.npy'), 'r+');
  const bytes = Buffer.alloc(DIM * 4);
  fs.readSync(fd, bytes, 0, bytes.length, NPY_DATA_OFFSET + row * DIM * 4);
  for (let k = 0; k < DIM; k++) bytes.writeFloatLE(values(k, bytes.readFloatLE(k * 4)), k * 4);
  fs.writeSync(fd, bytes, 0, bytes.length, NPY_DATA_OFFSET + row * DIM * 4);
  fs.closeSync(fd);
}

const firstRow = (dir: string, id: number) => {
  const ws = Workspace.openForRead(dir);
  const row = ws.doc(id)!.firstChunk;
  ws.close();
  return row;
};

test('a sound index verifies clean, every doc checksummed', (t) => {
  const dir = build(10);
  const report = Workspace.verify(dir);
  t.like(report, { ok: true, docs: 10, unchecksummed: 0, files: [], damagedDocs: [] });
  t.is(report.rows, 10 + (1 + 2 + 3 + 4) * 2 + 1 + 2);
});

test('flipped bytes, NaN and zero rows in chunks.npy are reported by doc; a writer refuses to append; the repair drops those docs only', (t) => {
  const dir = build(12);
  // Doc 2: a bit flip that keeps the row finite and (nearly) unit length: only the checksum sees it.
  pokeRow(dir, firstRow(dir, 2), (k, old) => (k === 3 ? old * (1 + 2 ** -20) : old));
  pokeRow(dir, firstRow(dir, 5) + 1, () => NaN);
  pokeRow(dir, firstRow(dir, 9), () => 0);

  const report = Workspace.verify(dir);
  t.false(report.ok);
  t.deepEqual(report.files, []);
  t.deepEqual(
    report.damagedDocs.map((d) => [d.id, d.path]),
    [
      [2, 'img/doc-2.jpg'],
      [5, 'img/doc-5.jpg'],
      [9, 'img/doc-9.jpg'],
    ],
  );
  t.deepEqual(report.damagedDocs[0].problems, ['rows differ from their checksum']);
  t.deepEqual(report.damagedDocs[1].problems, ['rows differ from their checksum', `row ${firstRow(dir, 5) + 1}: NaN or infinite values`]);
  t.deepEqual(report.damagedDocs[2].problems, ['rows differ from their checksum', `row ${firstRow(dir, 9)}: zero vector`]);

  const err = t.throws(() => open(dir), { instanceOf: NoIndexError });
  t.regex(err.message, /is damaged, nothing was added:\n {2}- doc 2 \(img\/doc-2\.jpg\): rows differ from their checksum\n/);
  t.regex(err.message, /flower-native verify --repair --workspace .*or re-index with --rebuild/);

  const dropped = Workspace.dropDamagedDocs(dir);
  t.deepEqual(
    dropped.map((d) => d.path),
    ['img/doc-2.jpg', 'img/doc-5.jpg', 'img/doc-9.jpg'],
  );
  t.like(Workspace.verify(dir), { ok: true, docs: 9 });
  const ws = open(dir); // appending works again, and the dropped docs can come back
  t.false(ws.hasDoc(makeDoc(5, DIM).sha256));
  ws.addDocs([makeDoc(5, DIM)]);
  ws.close();
  const reader = Workspace.openForRead(dir);
  const kept = [0, 1, 3, 4, 6, 7, 8, 10, 11, 5];
  t.deepEqual(
    reader.docs().map((d) => d.path),
    kept.map((i) => `img/doc-${i}.jpg`),
  );
  t.deepEqual(
    Array.from(reader.matrix()),
    kept.flatMap((i) => Array.from(makeDoc(i, DIM).vectors)),
  );
  reader.close();
});

test('a garbage page in index.sqlite is reported by verify, refused by a writer (re-index with --rebuild), and not "repaired"', (t) => {
  const dir = build(300); // enough rows for the chunks table to span several pages
  const file = path.join(dir, 'index.sqlite');
  const pageSize = 4096;
  const pages = fs.statSync(file).size / pageSize;
  t.true(pages >= 8, `${pages} pages`);
  const fd = fs.openSync(file, 'r+');
  const garbage = Buffer.alloc(pageSize);
  for (let i = 0; i < pageSize; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  fs.writeSync(fd, garbage, 0, pageSize, (pages - 3) * pageSize);
  fs.closeSync(fd);

  const report = Workspace.verify(dir);
  t.false(report.ok);
  t.true(report.files.length > 0 && report.files.every((line) => /SQLite quick_check|index\.sqlite/.test(line)), report.files.join('\n'));
  const err = t.throws(() => open(dir), { instanceOf: NoIndexError });
  t.regex(err.message, /damaged[\s\S]*re-index[^\n]*--rebuild/);
  t.throws(() => Workspace.dropDamagedDocs(dir), { instanceOf: NoIndexError, message: /index\.sqlite.*--rebuild/ });
  // The rebuild needs none of the damaged files.
  const rebuilt = Workspace.openForWrite(dir, { model, chunking: testChunking, rebuild: true });
  rebuilt.addDocs([makeDoc(0, DIM)]);
  rebuilt.close();
  t.like(Workspace.verify(dir), { ok: true, docs: 1 });
});

test('an index from before checksums verifies by row values, and a writer checksums what it adds from then on', (t) => {
  const dir = build(5);
  const db = new Database(path.join(dir, 'index.sqlite'));
  db.exec('ALTER TABLE docs DROP COLUMN rows_crc32');
  db.close();
  t.like(Workspace.verify(dir), { ok: true, docs: 5, unchecksummed: 5 });
  pokeRow(dir, 0, () => NaN);
  t.deepEqual(
    Workspace.verify(dir).damagedDocs.map((d) => d.problems),
    [['row 0: NaN or infinite values']],
  );
  pokeRow(dir, 0, (k) => Array.from(makeDoc(0, DIM).vectors)[k]);
  const ws = open(dir);
  ws.addDocs([makeDoc(5, DIM)]);
  ws.close();
  t.like(Workspace.verify(dir), { ok: true, docs: 6, unchecksummed: 5 });
});

test('flower-native verify: exit 0 and "ok" when sound; the damage by doc and exit 1 when not (--json too); --repair drops the damaged docs', async (t) => {
  const dir = build(6);
  const sound = await runCli(['verify', '--workspace', dir]);
  t.is(sound.code, 0, sound.stderr);
  t.regex(sound.stdout, /: 6 images, \d+ chunk rows\nok: nothing damaged\n$/);

  pokeRow(dir, firstRow(dir, 4), () => NaN);
  const damaged = await runCli(['verify', '--workspace', dir]);
  t.is(damaged.code, 1);
  t.regex(
    damaged.stdout,
    new RegExp(`damaged images: 1\n  doc 4 img/doc-4\\.jpg \\(rows ${firstRow(dir, 4)}\\.\\.\\d+\\): rows differ from their checksum; row ${firstRow(dir, 4)}: NaN or infinite values`),
  );
  t.regex(damaged.stdout, /verify --repair --workspace/);
  const json = await runCli(['verify', '--workspace', dir, '--json']);
  t.is(json.code, 1);
  t.like(JSON.parse(json.stdout), { ok: false, docs: 6, files: [], damagedDocs: [{ id: 4, path: 'img/doc-4.jpg' }] });

  const repaired = await runCli(['verify', '--workspace', dir, '--repair']);
  t.is(repaired.code, 0, repaired.stderr);
  t.regex(repaired.stdout, /repaired: dropped 1 damaged images[^\n]*\n {2}img\/doc-4\.jpg\n[\s\S]*ok: nothing damaged/);
  t.like(Workspace.verify(dir), { ok: true, docs: 5 });

  const missing = await runCli(['verify', '--workspace', path.join(dir, 'nope')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no index at .*nope: nothing to verify/);
});
