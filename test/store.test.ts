import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { NPY_DATA_OFFSET, SOURCES_FILE, Workspace, npyHeader, parseNpyHeader, readSources, type NewDoc, type WorkspaceManifest } from '../src/store/index.js';
import { IncompatibleIndexError, NoIndexError } from '../src/errors.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';

const DIM = 16;
const model = testModel(DIM);

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'flower-store-'));
}

function build(dir: string, ids: number[]): void {
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  ws.addDocs(ids.map((i) => makeDoc(i, DIM)));
  ws.close();
}

function concatVectors(docs: NewDoc[]): Float32Array {
  const out = new Float32Array(docs.reduce((n, d) => n + d.vectors.length, 0));
  let at = 0;
  for (const d of docs) {
    out.set(d.vectors, at);
    at += d.vectors.length;
  }
  return out;
}

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

test('round trip: what addDocs stores reads back the same, after reopening too', (t) => {
  const dir = tempDir();
  const docs = [0, 1, 2].map((i) => makeDoc(i, DIM));
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  const added = ws.addDocs(docs);
  t.deepEqual(
    added.map((d) => d.id),
    [0, 1, 2],
  );

  const check = (w: Workspace) => {
    t.is(w.dim, DIM);
    t.is(w.docCount, 3);
    t.is(w.chunkCount, 2 + 3 + 4);
    t.deepEqual(Array.from(w.matrix()), Array.from(concatVectors(docs)));
    t.deepEqual(Array.from(w.chunkDoc()), [0, 0, 1, 1, 1, 2, 2, 2, 2]);
    t.deepEqual(Array.from(w.docChunkCounts()), [2, 3, 4]);
    t.deepEqual(Array.from(w.wholeChunkRows()), [1, 4, 8]);
    t.deepEqual(w.doc(1), {
      id: 1,
      path: 'img/doc-1.jpg',
      sha256: docs[1].sha256,
      bytes: 1001,
      width: 301,
      height: 256,
      label: 'class-1',
      chunkCount: 3,
      firstChunk: 2,
    });
    t.is(w.doc(3), undefined);
    t.deepEqual(w.chunk(3), { row: 3, doc: 1, kind: 'window', box: { x: 112, y: 0, width: 224, height: 224 } });
    t.deepEqual(w.chunk(4), { row: 4, doc: 1, kind: 'whole', box: { x: 0, y: 0, width: 301, height: 256 } });
    t.deepEqual(
      w.docChunks(2).map((c) => c.row),
      [5, 6, 7, 8],
    );
    t.throws(() => w.chunk(9), { instanceOf: RangeError });
    t.deepEqual(
      w.docs().map((d) => d.path),
      ['img/doc-0.jpg', 'img/doc-1.jpg', 'img/doc-2.jpg'],
    );
    t.true(w.hasDoc(docs[2].sha256));
    t.false(w.hasDoc(makeDoc(7, DIM).sha256));
  };
  check(ws);
  ws.close();

  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WorkspaceManifest;
  t.like(manifest, { formatVersion: 1, model, chunking: testChunking, counts: { docs: 3, chunks: 9 } });
  const reader = Workspace.openForRead(dir);
  check(reader);
  t.throws(() => reader.addDocs([makeDoc(5, DIM)]), { message: /opened for reading/ });
  reader.close();
});

test('incremental add skips docs already indexed (by sha256) and duplicates within a batch', (t) => {
  const dir = tempDir();
  build(dir, [0, 1, 2, 3, 4]);
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  const added = ws.addDocs([3, 4, 5, 5, 6].map((i) => makeDoc(i, DIM)));
  t.deepEqual(
    added.map((d) => [d.id, d.path]),
    [
      [5, 'img/doc-5.jpg'],
      [6, 'img/doc-6.jpg'],
    ],
  );
  t.deepEqual(ws.addDocs([makeDoc(1, DIM)]), []);
  ws.close();

  const reader = Workspace.openForRead(dir);
  t.is(reader.docCount, 7);
  t.deepEqual(
    reader.docs().map((d) => d.sha256),
    [0, 1, 2, 3, 4, 5, 6].map((i) => makeDoc(i, DIM).sha256),
  );
  t.deepEqual(Array.from(reader.matrix()), Array.from(concatVectors([0, 1, 2, 3, 4, 5, 6].map((i) => makeDoc(i, DIM)))));
  reader.close();
});

test('a missing or empty workspace is a clear error, never an empty result', (t) => {
  const dir = tempDir();
  t.throws(() => Workspace.openForRead(path.join(dir, 'nope')), { instanceOf: NoIndexError, message: /^no index at .*nope: run `flower-native index/ });
  // What a kill during the very first open leaves: files but no manifest. Not an index; a writer starts afresh.
  fs.writeFileSync(path.join(dir, 'index.sqlite'), 'half-written');
  fs.writeFileSync(path.join(dir, 'chunks.npy'), 'half-written');
  t.throws(() => Workspace.openForRead(dir), { instanceOf: NoIndexError, message: /^no index at / });
  Workspace.openForWrite(dir, { model, chunking: testChunking }).close();
  t.throws(() => Workspace.openForRead(dir), { instanceOf: NoIndexError, message: /^index at .* is empty/ });
});

test('a different model, chunking or format version is an error naming the difference and --rebuild', (t) => {
  const dir = tempDir();
  build(dir, [0, 1]);
  const otherModel = { name: 'other', sha256: 'b'.repeat(64), dim: DIM };
  const err = t.throws(() => Workspace.openForWrite(dir, { model: otherModel, chunking: testChunking }), { instanceOf: IncompatibleIndexError });
  t.regex(err.message, /model sha256: the index was built with a{64} \(test-model\), this run uses b{64} \(other\)/);
  t.regex(err.message, /--rebuild/);
  t.notRegex(err.message, /chunking/);

  const reader = Workspace.openForRead(dir);
  // Key order does not matter; values do.
  t.notThrows(() => reader.assertCompatible({ model, chunking: { whole: true, stride: 112, window: 224, shorterSide: 256 } }));
  const both = t.throws(() => reader.assertCompatible({ model: otherModel, chunking: { ...testChunking, stride: 64 } }), { instanceOf: IncompatibleIndexError });
  t.deepEqual(
    both.differences.map((d) => d.split(':')[0]),
    ['model sha256', 'chunking params'],
  );
  t.regex(both.message, /"stride":64/);
  reader.close();

  // A failed open leaves the index as it was, and unlocked.
  t.is(Workspace.openForRead(dir).docCount, 2);
  const manifestFile = path.join(dir, 'manifest.json');
  fs.writeFileSync(manifestFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(manifestFile, 'utf8')), formatVersion: 99 }));
  t.throws(() => Workspace.openForRead(dir), { instanceOf: IncompatibleIndexError, message: /format version: the index uses 99, this flower-native reads 1[\s\S]*--rebuild/ });
  const rebuilt = Workspace.openForWrite(dir, { model, chunking: testChunking, rebuild: true });
  rebuilt.addDocs([makeDoc(9, DIM)]);
  rebuilt.close();
  t.is(Workspace.openForRead(dir).docs()[0].path, 'img/doc-9.jpg');
});

test('chunks.npy is a .npy v1.0 <f4 C-order matrix with 64-byte-aligned data, readable by numpy', (t) => {
  const dir = tempDir();
  const docs = [0, 1, 2, 3].map((i) => makeDoc(i, DIM));
  build(dir, [0, 1]);
  build(dir, [2, 3]); // the header is rewritten in place as rows grow
  const file = path.join(dir, 'chunks.npy');
  const bytes = fs.readFileSync(file);
  t.is(bytes[6], 1);
  t.is(bytes[7], 0);
  const info = parseNpyHeader(bytes, file);
  t.deepEqual(info, { descr: '<f4', fortranOrder: false, shape: [14, DIM], dataOffset: NPY_DATA_OFFSET });
  t.is(info.dataOffset % 64, 0);
  t.is(bytes[info.dataOffset - 1], 0x0a); // header ends in a newline
  t.is(bytes.length, info.dataOffset + 14 * DIM * 4);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + info.dataOffset, bytes.byteOffset + bytes.length));
  t.deepEqual(Array.from(data), Array.from(concatVectors(docs)));

  if (!hasNumpy) {
    t.log('python3 numpy not available: checked the header by parsing only');
    return;
  }
  const out = execFileSync(
    'python3',
    [
      '-c',
      `
import json, sys, numpy as np
m = np.load(sys.argv[1])
mm = np.load(sys.argv[1], mmap_mode='r')
print(json.dumps({'shape': list(m.shape), 'dtype': str(m.dtype), 'c': bool(m.flags['C_CONTIGUOUS']),
  'offset': int(mm.offset), 'sum': float(m.astype('f8').sum()), 'norms': np.linalg.norm(m, axis=1).round(5).tolist()}))
`,
      file,
    ],
    { encoding: 'utf8' },
  );
  const py = JSON.parse(out) as { shape: number[]; dtype: string; c: boolean; offset: number; sum: number; norms: number[] };
  t.deepEqual(py.shape, [14, DIM]);
  t.is(py.dtype, 'float32');
  t.true(py.c);
  t.is(py.offset, NPY_DATA_OFFSET);
  t.true(Math.abs(py.sum - Array.from(data).reduce((a, b) => a + b, 0)) < 1e-4);
  t.true(py.norms.every((n) => Math.abs(n - 1) < 1e-4));
});

test('rows past the commit point (a crash mid-add) are invisible to readers and cut off by the next writer', (t) => {
  const dir = tempDir();
  build(dir, [0, 1]);
  const file = path.join(dir, 'chunks.npy');
  const committedSize = fs.statSync(file).size;
  // What a kill between the row append and the SQLite commit leaves: extra rows, old header.
  fs.appendFileSync(file, Buffer.alloc(3 * DIM * 4, 0x7f));

  const reader = Workspace.openForRead(dir);
  t.is(reader.chunkCount, 5);
  t.is(reader.matrix().length, 5 * DIM);
  reader.close();

  // What a kill between the commit and the header update leaves: a header behind the rows.
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  t.is(fs.statSync(file).size, committedSize);
  ws.addDocs([makeDoc(2, DIM)]);
  ws.close();
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, npyHeader(5, DIM), 0, NPY_DATA_OFFSET, 0);
  fs.closeSync(fd);
  t.deepEqual(parseNpyHeader(fs.readFileSync(file)).shape, [5, DIM]);
  t.is(Workspace.openForRead(dir).chunkCount, 9);
  Workspace.openForWrite(dir, { model, chunking: testChunking }).close();
  t.deepEqual(parseNpyHeader(fs.readFileSync(file)).shape, [9, DIM]);
});

test('one writer at a time; readers keep the snapshot they opened', (t) => {
  const dir = tempDir();
  build(dir, [0]);
  const writer = Workspace.openForWrite(dir, { model, chunking: testChunking });
  t.throws(() => Workspace.openForWrite(dir, { model, chunking: testChunking }), { message: new RegExp(`being written by process ${process.pid}`) });
  const reader = Workspace.openForRead(dir);
  writer.addDocs([makeDoc(1, DIM)]);
  t.is(reader.docCount, 1);
  t.is(reader.docs().length, 1);
  t.is(reader.matrix().length, 2 * DIM);
  t.false(reader.hasDoc(makeDoc(1, DIM).sha256));
  t.is(Workspace.openForRead(dir).docCount, 2);
  writer.close();
  reader.close();
  t.notThrows(() => Workspace.openForWrite(dir, { model, chunking: testChunking }).close());
});

/** SQLite header bytes 18-19: 1 = rollback journal, 2 = WAL. */
function journalVersions(dir: string): number[] {
  const header = fs.readFileSync(path.join(dir, 'index.sqlite')).subarray(18, 20);
  return [header[0], header[1]];
}
const walFiles = (dir: string) => fs.readdirSync(dir).filter((f) => /-(wal|shm)$/.test(f));

test('a closed index needs no write access to read: rollback journal, and readers leave no -wal/-shm', (t) => {
  const dir = tempDir();
  build(dir, [0]);
  t.deepEqual(journalVersions(dir), [1, 1]);
  const reader = Workspace.openForRead(dir);
  t.is(reader.docs().length, 1);
  t.deepEqual(walFiles(dir), []);
  reader.close();

  // A writer closing while a reader is connected leaves WAL on (the reader keeps working); the
  // next writer to close alone switches back.
  const writer = Workspace.openForWrite(dir, { model, chunking: testChunking });
  const concurrent = Workspace.openForRead(dir);
  writer.addDocs([makeDoc(1, DIM)]);
  t.notThrows(() => writer.close());
  t.is(concurrent.docs().length, 1);
  concurrent.close();
  Workspace.openForWrite(dir, { model, chunking: testChunking }).close();
  t.deepEqual(journalVersions(dir), [1, 1]);
  t.is(Workspace.openForRead(dir).docCount, 2);
  t.deepEqual(walFiles(dir), []);
});

// A read-only bind mount in a private mount namespace: needs Linux and the right to unshare.
const canMountReadOnly = process.platform === 'linux' && spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind / /mnt && mount -o remount,bind,ro /mnt'], { stdio: 'ignore' }).status === 0;

(canMountReadOnly ? test : test.skip)('an index on a read-only filesystem opens for queries', (t) => {
  const dir = tempDir();
  build(dir, [0, 1, 2]);
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-ro-'));
  const store = new URL('../src/store/index.js', import.meta.url).href;
  const reader = `const { Workspace } = await import(${JSON.stringify(store)});
    const ws = Workspace.openForRead(process.argv[1]);
    console.log(ws.docCount, ws.matrix().length, ws.chunk(0).doc);
    ws.close();`;
  const script = `mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && touch "$2/probe" 2>/dev/null && exit 3; ` + `exec node --input-type=module -e '${reader}' "$2"`;
  const run = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', dir, mount], { encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  t.is(run.stdout.trim(), `3 ${(2 + 3 + 4) * DIM} 0`);
});

test('addDocs rejects malformed docs with the path and the problem', (t) => {
  const ws = Workspace.openForWrite(tempDir(), { model, chunking: testChunking });
  const good = makeDoc(0, DIM);
  t.throws(() => ws.addDocs([{ ...good, vectors: new Float32Array(3) }]), { instanceOf: TypeError, message: /img\/doc-0\.jpg.*Float32Array of 2 × 16/ });
  t.throws(() => ws.addDocs([{ ...good, sha256: 'xyz' }]), { message: /sha256 must be 64 lowercase hex/ });
  t.throws(() => ws.addDocs([{ ...good, chunks: [] }]), { message: /at least one chunk/ });
  t.throws(() => ws.addDocs([{ ...good, chunks: [{ kind: 'tile' as 'window', box: good.chunks[0].box }, good.chunks[1]] }]), { message: /chunk kind/ });
  t.is(ws.docCount, 0);
  ws.close();
});

test('rebuild: the old index stays readable until the new one is complete, then is replaced', (t) => {
  const dir = tempDir();
  build(dir, [0, 1, 2]);
  const newModel = { name: 'new-model', sha256: 'c'.repeat(64), dim: 8 };
  const ws = Workspace.openForWrite(dir, { model: newModel, chunking: testChunking, rebuild: true });
  ws.addDocs([makeDoc(5, 8)]);
  const during = Workspace.openForRead(dir);
  t.is(during.manifest.model.sha256, model.sha256);
  t.is(during.docCount, 3);
  during.close();
  ws.close();

  const after = Workspace.openForRead(dir);
  t.deepEqual(after.manifest.model, newModel);
  t.deepEqual(
    after.docs().map((d) => d.path),
    ['img/doc-5.jpg'],
  );
  t.deepEqual(Array.from(after.matrix()), Array.from(makeDoc(5, 8).vectors));
  t.false(fs.existsSync(path.join(dir, '.rebuild')));
  after.close();

  // A rebuild that fails (abort) is dropped; the index it would have replaced stays.
  const failing = Workspace.openForWrite(dir, { model, chunking: testChunking, rebuild: true });
  failing.addDocs([makeDoc(6, DIM)]);
  failing.abort();
  const kept = Workspace.openForRead(dir);
  t.deepEqual(kept.manifest.model, newModel);
  t.deepEqual(
    kept.docs().map((d) => d.path),
    ['img/doc-5.jpg'],
  );
  t.false(fs.existsSync(path.join(dir, '.rebuild')));
  kept.close();
});

test('a finished rebuild whose swap was interrupted is completed by the next open', (t) => {
  const dir = tempDir();
  build(dir, [0, 1, 2]);
  // Stage a complete index as a rebuild would, marked READY, with the old files still in place.
  const other = tempDir();
  build(other, [7]);
  const staging = path.join(dir, '.rebuild');
  fs.mkdirSync(staging);
  for (const f of ['manifest.json', 'chunks.npy', 'index.sqlite']) fs.copyFileSync(path.join(other, f), path.join(staging, f));
  fs.writeFileSync(path.join(staging, 'READY'), '');
  // ...and the swap got as far as moving the matrix.
  fs.renameSync(path.join(staging, 'chunks.npy'), path.join(dir, 'chunks.npy'));

  const reader = Workspace.openForRead(dir);
  t.deepEqual(
    reader.docs().map((d) => d.path),
    ['img/doc-7.jpg'],
  );
  t.deepEqual(Array.from(reader.matrix()), Array.from(makeDoc(7, DIM).vectors));
  t.false(fs.existsSync(staging));
  reader.close();
});

test("sources.json is the writer's to write: atomically on close, not on abort, and swapped in with a rebuild", (t) => {
  const dir = tempDir();
  const first = { model: '/models/first', data: '/data/first' };
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking, sources: first });
  ws.addDocs([makeDoc(0, DIM)]);
  t.is(readSources(dir), undefined, 'written on close, under the lock');
  ws.close();
  t.deepEqual(readSources(dir), first);
  t.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp')),
    [],
    'no temp file left',
  );

  const failing = Workspace.openForWrite(dir, { model, chunking: testChunking, sources: { model: '/models/failed', data: '/data/failed' } });
  failing.addDocs([makeDoc(1, DIM)]);
  failing.abort();
  t.deepEqual(readSources(dir), first, 'a failed run does not claim the workspace');

  const second = { model: '/models/second', data: '/data/second' };
  const rebuild = Workspace.openForWrite(dir, { model: { ...model, sha256: 'e'.repeat(64) }, chunking: testChunking, rebuild: true, sources: second });
  rebuild.addDocs([makeDoc(2, DIM)]);
  rebuild.close();
  t.deepEqual(readSources(dir), second);

  // A rebuild killed mid-swap: its sources.json is still staged, and the next open moves it in with the index.
  const staging = path.join(dir, '.rebuild');
  const other = tempDir();
  build(other, [7]);
  fs.mkdirSync(staging);
  for (const f of ['chunks.npy', 'index.sqlite', 'manifest.json']) fs.copyFileSync(path.join(other, f), path.join(staging, f));
  const third = { model: '/models/third', data: '/data/third' };
  fs.writeFileSync(path.join(staging, SOURCES_FILE), JSON.stringify(third));
  fs.writeFileSync(path.join(staging, 'READY'), '');
  const reader = Workspace.openForRead(dir);
  t.deepEqual(
    reader.docs().map((d) => d.path),
    ['img/doc-7.jpg'],
  );
  reader.close();
  t.deepEqual(readSources(dir), third);
});
