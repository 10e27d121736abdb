/**
 * kill -9 at random moments while a child process adds batches: after every kill the index must be
 * consistent (manifest, SQLite and chunks.npy agree; every committed doc has all its rows with the
 * right vectors; nothing partial is visible), and resuming must complete it.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NPY_DATA_OFFSET, Workspace, parseNpyHeader, type WorkspaceManifest } from '../src/store/index.js';
import { prng } from './helpers/prng.js';
import { docSha, makeDoc, testChunking, testModel } from './helpers/store-docs.js';

const writerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'store-writer.js');
const DIM = 256;
const TOTAL = 1500;
const BATCH = 3;

/** Run the writer; with killAfterBatches, SIGKILL it a random few ms after it reports that many commits. */
function runWriter(args: string[], kill?: { afterBatches: number; delayMs: number }): Promise<{ killed: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let batches = 0;
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text;
      batches += (text.match(/^batch /gm) ?? []).length;
      if (kill && !sent && (batches >= kill.afterBatches || /^holding$/m.test(output))) {
        sent = true;
        setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      output += text;
    });
    child.on('error', reject);
    // 'exit' also reaps the child, so its pid no longer looks alive to the workspace lock.
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true, output });
      else if (code === 0) resolve({ killed: false, output });
      else reject(new Error(`writer exited with ${code ?? signal}: ${output}`));
    });
  });
}

/** Everything a reader can see is whole and right: docs 0..n-1 in order, each with its exact rows. */
function checkVisible(t: ExecutionContext, ws: Workspace): number {
  const docs = ws.docs();
  const matrix = ws.matrix();
  let row = 0;
  docs.forEach((d, i) => {
    const expected = makeDoc(i, DIM);
    if (d.id !== i || d.sha256 !== docSha(i) || d.firstChunk !== row || d.chunkCount !== expected.chunks.length) {
      t.fail(`doc ${i} is wrong: ${JSON.stringify(d)}`);
    }
    const stored = matrix.subarray(row * DIM, (row + d.chunkCount) * DIM);
    if (!stored.every((v, k) => v === expected.vectors[k])) t.fail(`doc ${i}: stored vectors differ`);
    const chunks = ws.docChunks(i);
    if (chunks.length !== d.chunkCount || chunks.some((c, k) => c.row !== row + k || c.kind !== expected.chunks[k].kind)) t.fail(`doc ${i}: chunk records are wrong`);
    row += d.chunkCount;
  });
  t.is(ws.chunkCount, row);
  t.is(ws.chunkDoc().length, row);
  return docs.length;
}

/** After a writer has repaired it: manifest, SQLite and the npy header/size all agree. */
function checkFilesAgree(t: ExecutionContext, dir: string, docs: number, rows: number): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WorkspaceManifest;
  t.deepEqual(manifest.counts, { docs, chunks: rows });
  const npy = fs.readFileSync(path.join(dir, 'chunks.npy'));
  t.deepEqual(parseNpyHeader(npy).shape, [rows, DIM]);
  t.is(npy.length, NPY_DATA_OFFSET + rows * DIM * 4);
}

test('kill -9 at random moments during addDocs never leaves a partial or inconsistent index', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-crash-'));
  const random = prng(20240611);
  const args = [dir, String(TOTAL), String(BATCH), String(DIM)];
  let lastDocs = 0;
  let kills = 0;
  for (let round = 0; round < 8; round++) {
    const kill = { afterBatches: 1 + Math.floor(random() * 25), delayMs: Math.floor(random() * 4) };
    const { killed } = await runWriter(args, kill);
    if (!killed) break;
    kills += 1;

    const reader = Workspace.openForRead(dir); // read-only: sees the state exactly as the kill left it
    const docs = checkVisible(t, reader);
    reader.close();
    t.true(docs >= lastDocs, 'committed docs are never lost');
    lastDocs = docs;

    const npy = fs.readFileSync(path.join(dir, 'chunks.npy'));
    t.log(`kill ${kills}: ${docs} docs committed; npy header rows ${parseNpyHeader(npy).shape[0]}, rows in file ${(npy.length - NPY_DATA_OFFSET) / (DIM * 4)}`);
    const writer = Workspace.openForWrite(dir, { model: testModel(DIM), chunking: testChunking }); // repairs
    const rows = writer.chunkCount;
    t.is(writer.docCount, docs);
    writer.close();
    checkFilesAgree(t, dir, docs, rows);
  }
  t.true(kills >= 5, `only ${kills} kills landed before the writer finished`);

  const { killed, output } = await runWriter(args);
  t.false(killed);
  t.regex(output, /done/);
  const ws = Workspace.openForRead(dir);
  t.is(checkVisible(t, ws), TOTAL);
  checkFilesAgree(t, dir, TOTAL, ws.chunkCount);
  ws.close();
});

test('kill -9 during a rebuild leaves the old index in place; the next rebuild completes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-crash-'));
  await runWriter([dir, '20', '4', String(DIM)]);
  const otherSha = 'd'.repeat(64);
  const rebuild = [dir, '30', '4', String(DIM), '--rebuild', '--sha', otherSha];
  // Killed once it has written everything but not closed: the rebuild was not finished.
  t.true((await runWriter([...rebuild, '--hold'], { afterBatches: 1000, delayMs: 0 })).killed);
  const old = Workspace.openForRead(dir);
  t.is(old.manifest.model.sha256, testModel(DIM).sha256);
  t.is(checkVisible(t, old), 20);
  old.close();

  t.false((await runWriter(rebuild)).killed);
  const fresh = Workspace.openForRead(dir);
  t.is(fresh.manifest.model.sha256, otherSha);
  t.is(checkVisible(t, fresh), 30);
  fresh.close();
});
