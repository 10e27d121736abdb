/** kill -9 in the middle of `index`, then run it again: the index is complete, consistent and without duplicates. */
import path from 'node:path';
import test from 'ava';
import { Workspace, readSources } from '../src/store/index.js';
import { makeDataDir, modelDir, runCli, startCli, subset, tempDir } from './e2e-helpers.js';

test('an index run killed with SIGKILL mid-way is completed by the next run', async (t) => {
  const images = subset(5, 8); // 40 images
  const data = await makeDataDir(images);
  const workspace = path.join(await tempDir('ws'), 'index');
  const args = ['index', '--data', data, '--model', modelDir, '--workspace', workspace];

  // Kill it once some docs are committed and others are not: the index is then mid-way for sure.
  const child = startCli(args);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let committed = 0;
  while (committed === 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (child.exitCode !== null) throw new Error(`index finished (${child.exitCode}) before it could be killed: ${stderr}`);
    try {
      const ws = Workspace.openForRead(workspace);
      committed = ws.docCount;
      ws.close();
    } catch {
      // no index yet
    }
  }
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('close', resolve));
  t.is(child.signalCode, 'SIGKILL');
  t.true(committed < 40, `killed mid-run (${committed} committed)`);
  t.is(readSources(workspace), undefined, 'sources.json is written only by a writer that finishes');

  const again = await runCli(args);
  t.is(again.code, 0, again.stderr);
  const indexedAgain = Number(/^indexed (\d+) images/m.exec(again.stdout)![1]);
  const unchanged = Number(/already indexed: (\d+)/.exec(again.stdout)![1]);
  t.is(indexedAgain + unchanged, 40, 'every image is either kept from the killed run or added now');
  t.true(unchanged >= committed, 'what the killed run committed is kept');
  t.true(indexedAgain > 0);
  t.deepEqual(readSources(workspace), { model: path.resolve(modelDir), data: path.resolve(data) });

  const ws = Workspace.openForRead(workspace);
  try {
    t.is(ws.docCount, 40);
    const docs = ws.docs();
    t.is(new Set(docs.map((doc) => doc.sha256)).size, 40, 'no duplicates');
    t.is(new Set(docs.map((doc) => doc.path)).size, 40);
    let row = 0;
    for (const doc of docs) {
      t.is(doc.firstChunk, row, 'chunks are contiguous, in doc order');
      row += doc.chunkCount;
    }
    t.is(ws.chunkCount, row);
    const matrix = ws.matrix();
    t.is(matrix.length, row * ws.dim);
    for (const r of [0, row - 1]) {
      let norm = 0;
      for (let i = r * ws.dim; i < (r + 1) * ws.dim; i++) norm += matrix[i] * matrix[i];
      t.true(Math.abs(norm - 1) < 1e-3, `row ${r} is a written, normalized vector`);
    }
  } finally {
    ws.close();
  }
});
