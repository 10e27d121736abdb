/** kill -9 in the middle of `index`, then run it again: the index is complete, consistent and without duplicates. */
import path from 'node:path';
import test from 'ava';
import { Workspace, readSources } from '../src/store/index.js';
import { makeDataDir, modelDir, runCli, startCli, subset, tempDir } from './e2e-helpers.js';

test('an index run killed with SIGKILL mid-way is completed by the next run', async (t) => {
  const images = subset(8, 8); // 64 images: two commits' worth (a run commits every 32 docs or 2 s)
  const data = await makeDataDir(images);
  const workspace = path.join(await tempDir('ws'), 'index');
  const args = ['index', '--data', data, '--model', modelDir, '--workspace', workspace];

  // Killed on what the run reports, not on a poll that a quick run can outpace: a progress line past
  // 32 files means a commit has happened (no more than 32 docs wait uncommitted), and most files are left.
  const child = startCli(args);
  const midway = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      for (const line of seen.matchAll(/indexing: (\d+)\/64 files[^\n]*/g)) if (Number(line[1]) > 32 && Number(line[1]) < 58) resolve(line[0]);
    });
    child.once('exit', (code) => reject(new Error(`index finished (${code}) before it could be killed mid-way:\n${seen}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('close', resolve));
  t.log(`killed at: ${midway}`);
  t.is(child.signalCode, 'SIGKILL');
  const killed = Workspace.openForRead(workspace);
  const committed = killed.docCount;
  killed.close();
  t.true(committed > 0 && committed < 64, `killed mid-run (${committed} committed)`);
  t.is(readSources(workspace), undefined, 'sources.json is written only by a writer that finishes');

  const again = await runCli(args);
  t.is(again.code, 0, again.stderr);
  const indexedAgain = Number(/^indexed (\d+) images/m.exec(again.stdout)![1]);
  const unchanged = Number(/already indexed: (\d+)/.exec(again.stdout)![1]);
  t.is(indexedAgain + unchanged, 64, 'every image is either kept from the killed run or added now');
  t.true(unchanged >= committed, 'what the killed run committed is kept');
  t.true(indexedAgain > 0);
  t.deepEqual(readSources(workspace), { model: path.resolve(modelDir), data: path.resolve(data) });

  const ws = Workspace.openForRead(workspace);
  try {
    t.is(ws.docCount, 64);
    const docs = ws.docs();
    t.is(new Set(docs.map((doc) => doc.sha256)).size, 64, 'no duplicates');
    t.is(new Set(docs.map((doc) => doc.path)).size, 64);
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
