/**
 * A full disk (a small tmpfs): the error names the file that could not be written, and the failed
 * run cleans up what it made (temp files, the rows past the commit point, a fresh .rebuild/, a
 * fresh workspace's empty index) while keeping what was committed. The .lock file stays by design.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { NPY_DATA_OFFSET, Workspace } from '../src/store/index.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';

const DIM = 1280;
const model = testModel(DIM);
const NO_SPACE = /^cannot write \/.*\/(chunks\.npy|index\.sqlite|manifest\.json|sources\.json): no space left on device/;

function tryMount(): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-full-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=600k', 'tmpfs', dir], { stdio: 'ignore' }).status === 0) return dir;
  fs.rmdirSync(dir);
  return undefined;
}
const probe = tryMount();
if (probe) spawnSync('umount', [probe]);
if (!probe) console.warn('store-disk-full: SKIPPED, mounting a tmpfs was refused (needs root or CAP_SYS_ADMIN)');
const fullDiskTest = probe ? test : test.skip;

/** A fresh small filesystem for one test, unmounted after it. */
function smallDisk(t: ExecutionContext): string {
  const dir = tryMount()!;
  t.teardown(() => {
    spawnSync('umount', ['-l', dir]); // lazily: a failed test may still hold files open there
    fs.rmdirSync(dir);
  });
  return dir;
}

/** Add batches of docs from `first` on until the disk is full; returns the error and the docs committed before it. */
function fillWithDocs(ws: Workspace, first: number): { error: Error; committed: number } {
  for (let i = first; ; i += 4) {
    const committed = ws.docCount;
    try {
      ws.addDocs([0, 1, 2, 3].map((k) => makeDoc(i + k, DIM)));
    } catch (error) {
      return { error: error as Error, committed };
    }
  }
}

/** Fill what space is left with one file. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch {
    // full
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.tmp-') || f === '.rebuild');

fullDiskTest('a full disk during addDocs names the file, keeps what was committed and cuts the rows written past it', (t) => {
  const dir = path.join(smallDisk(t), 'ws');
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  const { error, committed } = fillWithDocs(ws, 0);
  t.regex(error.message, NO_SPACE);
  t.true(committed > 0);
  t.notThrows(() => ws.abort(), 'abort after a failure never throws over it');
  t.deepEqual(leftovers(dir), []);
  const reader = Workspace.openForRead(dir);
  t.is(reader.docCount, committed);
  t.is(fs.statSync(path.join(dir, 'chunks.npy')).size, NPY_DATA_OFFSET + reader.chunkCount * DIM * 4, 'no rows past the commit point');
  reader.close();
  t.like(Workspace.verify(dir), { ok: true, docs: committed });
});

fullDiskTest('a rebuild that fills the disk is dropped: no .rebuild/ left, the old index intact', (t) => {
  const dir = path.join(smallDisk(t), 'ws');
  const old = Workspace.openForWrite(dir, { model, chunking: testChunking });
  old.addDocs([makeDoc(0, DIM), makeDoc(1, DIM)]);
  old.close();
  const rebuild = Workspace.openForWrite(dir, { model: testModel(DIM, 'f'.repeat(64)), chunking: testChunking, rebuild: true });
  const { error } = fillWithDocs(rebuild, 10);
  t.regex(error.message, NO_SPACE);
  rebuild.abort();
  t.deepEqual(leftovers(dir), []);
  t.like(Workspace.verify(dir), { ok: true, docs: 2 });
  t.is(Workspace.openForRead(dir).manifest.model.sha256, model.sha256);
});

fullDiskTest('a full disk when a writer closes names the file and leaves no temp file; the commits are kept', (t) => {
  const disk = smallDisk(t);
  const dir = path.join(disk, 'ws');
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking, sources: { model: '/m', data: '/d' } });
  ws.addDocs([makeDoc(0, DIM), makeDoc(1, DIM)]);
  const filler = fillDisk(disk);
  const error = t.throws(() => ws.close());
  t.regex(error.message, NO_SPACE);
  t.deepEqual(leftovers(dir), []);
  fs.rmSync(filler);
  t.like(Workspace.verify(dir), { ok: true, docs: 2 });
  t.notThrows(() => Workspace.openForWrite(dir, { model, chunking: testChunking }).close(), 'and the lock was let go');
});

fullDiskTest('a fresh workspace whose run fails on a full disk before any commit leaves no index behind', (t) => {
  const disk = smallDisk(t);
  const dir = path.join(disk, 'ws');
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  fillDisk(disk);
  t.regex(t.throws(() => ws.addDocs([makeDoc(0, DIM), makeDoc(1, DIM)])).message, NO_SPACE);
  ws.abort();
  t.deepEqual(fs.readdirSync(dir), ['.lock']);

  // Not even room to create one: the error names the file, and nothing is left either.
  const other = path.join(disk, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, '.lock'), '');
  const error = t.throws(() => Workspace.openForWrite(other, { model, chunking: testChunking }));
  t.regex(error.message, /^cannot (write \/.*\/(index\.sqlite|chunks\.npy|manifest\.json)|take the lock \/.*\/\.lock): no space left on device/);
  t.deepEqual(
    fs.readdirSync(other).filter((f) => f !== '.lock'),
    [],
  );
});
