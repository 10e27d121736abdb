/**
 * The rebuild swap, killed at every one of its steps: the next open (a reader or a writer) must find
 * either the complete old index (killed before the rebuild was marked ready) or the complete new one
 * (killed after), never none and never a mix.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Workspace, readSources } from '../src/store/index.js';
import { swapStepNames } from '../src/store/swap.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';
import { prng } from './helpers/prng.js';

const writerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'swap-writer.js');
const DIM = 16;
const oldModel = testModel(DIM);
const newSha = 'b'.repeat(64);

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'flower-swap-'));
}

/** An old index of docs 0..count-1 (sources /data/old). */
function buildOld(dir: string, count: number): void {
  const ws = Workspace.openForWrite(dir, { model: oldModel, chunking: testChunking, sources: { model: '/models/old', data: '/data/old' } });
  ws.addDocs(Array.from({ length: count }, (_, i) => makeDoc(i, DIM)));
  ws.close();
}

/** The index in `dir` is exactly docs first..first+count-1 built with model sha `sha`, vectors included. */
function expectIndex(t: ExecutionContext, dir: string, open: 'read' | 'write', sha: string, first: number, count: number, label: string): void {
  const ws = open === 'read' ? Workspace.openForRead(dir) : Workspace.openForWrite(dir, { model: testModel(DIM, sha), chunking: testChunking });
  try {
    t.is(ws.manifest.model.sha256, sha, `${label}: model`);
    t.deepEqual(
      ws.docs().map((d) => d.path),
      Array.from({ length: count }, (_, i) => `img/doc-${first + i}.jpg`),
      `${label}: docs`,
    );
    const expected = Array.from({ length: count }, (_, i) => Array.from(makeDoc(first + i, DIM).vectors)).flat();
    t.deepEqual(Array.from(ws.matrix()), expected, `${label}: vectors`);
  } finally {
    ws.close();
  }
  t.false(fs.existsSync(path.join(dir, '.rebuild')), `${label}: the staging directory is gone`);
}

test('a rebuild killed at every step of its swap leaves the complete old or the complete new index, for readers and writers', (t) => {
  const random = prng(20240612);
  const steps = swapStepNames();
  t.true(steps.length >= 6, `the swap has its steps named: ${steps.join(', ')}`);
  for (const step of steps) {
    const oldCount = 2 + Math.floor(random() * 5);
    const newCount = 2 + Math.floor(random() * 5);
    const dir = tempDir();
    buildOld(dir, oldCount);
    const run = spawnSync(process.execPath, [writerScript, dir, String(newCount), String(DIM), step], { encoding: 'utf8' });
    t.is(run.signal, 'SIGKILL', `killed after step "${step}": ${run.stderr}`);
    // The same crash, opened first by a reader in one copy and by a writer in the other.
    const copy = tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    const ready = step !== 'staged';
    expectIndex(t, dir, 'read', ready ? newSha : oldModel.sha256, ready ? 100 : 0, ready ? newCount : oldCount, `after "${step}", opened for reading`);
    expectIndex(t, copy, 'write', ready ? newSha : oldModel.sha256, ready ? 100 : 0, ready ? newCount : oldCount, `after "${step}", opened for writing`);
    t.deepEqual(readSources(dir), ready ? { model: '/models/new', data: '/data/new' } : { model: '/models/old', data: '/data/old' }, `after "${step}": sources.json goes with its index`);
  }
});

test('a staging directory holding only the READY mark (a swap killed after its last rename) keeps the swapped-in index', (t) => {
  const dir = tempDir();
  buildOld(dir, 3);
  fs.mkdirSync(path.join(dir, '.rebuild'));
  fs.writeFileSync(path.join(dir, '.rebuild', 'READY'), '');
  expectIndex(t, dir, 'read', oldModel.sha256, 0, 3, 'reader');
  fs.mkdirSync(path.join(dir, '.rebuild'));
  fs.writeFileSync(path.join(dir, '.rebuild', 'READY'), '');
  expectIndex(t, dir, 'write', oldModel.sha256, 0, 3, 'writer');
});
