/** The CLI end to end on 3 classes x 4 fixture images: index, query, re-run, errors. */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { openIndex, type QueryResult } from '../src/index.js';
import { Workspace } from '../src/store/index.js';
import { makeDataDir, modelDir, runCli, subset, tempDir } from './e2e-helpers.js';
import { flowerImage } from '../bench/fixtures.js';

const images = subset(3, 4); // daffodil 1-4, snowdrop 81-84, lily_valley 161-164
let data: string;
let workspace: string;
let firstRun: { stdout: string; stderr: string; code: number | null };

test.before(async () => {
  data = await makeDataDir(images);
  workspace = path.join(await tempDir('ws'), 'index');
  firstRun = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', workspace]);
});

interface JsonOutput {
  workspace: string;
  mode: string;
  queries: QueryResult[];
  errors: unknown[];
}

/** BiMatch's output, which these tests describe (the expanded default has tests of its own). */
async function queryJson(...args: string[]): Promise<JsonOutput> {
  const result = await runCli(['query', '--mode', 'bimatch', ...args, '--workspace', workspace, '--json']);
  if (result.code !== 0) throw new Error(`query failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as JsonOutput;
}

const label = (n: number) => ['daffodil', 'snowdrop', 'lily_valley'][Math.floor((n - 1) / 80)];

test('index prints a summary and exits 0', (t) => {
  t.is(firstRun.code, 0);
  t.regex(firstRun.stdout, /^indexed 12 images \(\d+ chunks\) in [\d.]+ s: [\d.]+ images\/s$/m);
  t.regex(firstRun.stdout, /already indexed: 0, skipped: 0, image files found: 12/);
  // Not a terminal: plain progress lines instead of a bar.
  t.regex(firstRun.stderr, /^indexing: 12\/12 files \(12 indexed, 0 unchanged, 0 skipped\), \d+ chunks, [\d.]+ images\/s$/m);
});

test('a query with an indexed image finds itself first, scored ~1, and ranks its class above the others', async (t) => {
  const out = await queryJson(flowerImage(1), flowerImage(81), '--top', '12');
  t.is(out.queries.length, 2);
  for (const [query, n] of [
    [out.queries[0], 1],
    [out.queries[1], 81],
  ] as const) {
    const [first] = query.results;
    t.is(path.basename(first.path), path.basename(flowerImage(n)));
    t.true(first.score > 0.99999 && first.score <= 1, `self score ${first.score}`);
    t.is(first.label, label(n));
    t.true(query.results.length >= 8, "docs with no chunk among any query chunk's top-k are not ranked");
    const ranks = (same: boolean) => query.results.filter((hit) => (hit.label === label(n)) === same).map((hit) => hit.rank);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    t.true(mean(ranks(true)) < mean(ranks(false)), `same-class docs rank higher: ${ranks(true).join(',')} vs ${ranks(false).join(',')}`);
    for (let i = 1; i < query.results.length; i++) t.true(query.results[i - 1].score >= query.results[i].score);
  }
});

test('--json has the documented shape', async (t) => {
  const out = await queryJson(flowerImage(2), '--top', '3');
  t.is(out.workspace, workspace);
  t.is(out.mode, 'bimatch');
  t.deepEqual(out.errors, []);
  const [query] = out.queries;
  t.is(query.query, flowerImage(2));
  t.deepEqual(Object.keys(query.timings).sort(), ['decode', 'encode', 'lookup', 'rank', 'topk']);
  t.is(query.results.length, 3);
  for (const [i, hit] of query.results.entries()) {
    t.deepEqual(Object.keys(hit).sort(), ['box', 'docId', 'label', 'path', 'rank', 'score']);
    t.is(hit.rank, i + 1);
    t.true(hit.score >= 0 && hit.score <= 1);
    t.deepEqual(Object.keys(hit.box).sort(), ['height', 'width', 'x', 'y']);
    t.true(hit.box.width > 0 && hit.box.height > 0);
  }
});

test('results are the same from a new process as from the API in this one', async (t) => {
  const searcher = await openIndex(workspace);
  try {
    const here = await searcher.search(flowerImage(162), { top: 5, mode: 'bimatch' });
    const there = (await queryJson(flowerImage(162), '--top', '5')).queries[0];
    t.deepEqual(
      there.results.map((hit) => hit.docId),
      here.results.map((hit) => hit.docId),
    );
    for (const [i, hit] of there.results.entries()) t.true(Math.abs(hit.score - here.results[i].score) < 1e-9);
  } finally {
    await searcher.close();
  }
});

test('text output shows rank, score, label, box and path; --min-score and --mode whole work', async (t) => {
  const text = await runCli(['query', flowerImage(3), '--workspace', workspace, '--top', '2', '--mode', 'bimatch']);
  t.is(text.code, 0);
  t.regex(text.stdout, /BiMatch score/);
  t.regex(text.stdout, /^\s+1\s+1\.0000\d\d\s+daffodil\s+\d+x\d+\+\d+\+\d+\s+\S+\/image_0003\.jpg$/m);
  const strict = await queryJson(flowerImage(3), '--min-score', '0.999999');
  t.true(strict.queries[0].results.every((hit) => hit.score >= 0.999999));
  t.is(strict.queries[0].results[0].path.endsWith('image_0003.jpg'), true);
  const whole = await queryJson(flowerImage(3), '--mode', 'whole', '--top', '12');
  t.is(whole.mode, 'whole');
  t.is(path.basename(whole.queries[0].results[0].path), 'image_0003.jpg');
  t.true(whole.queries[0].results[0].score > 0.9999);
});

test('re-running index adds nothing; the index holds each image once', async (t) => {
  const again = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', workspace]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^indexed 0 images \(0 chunks\)/m);
  t.regex(again.stdout, /already indexed: 12, skipped: 0/);
  const ws = Workspace.openForRead(workspace);
  try {
    t.is(ws.docCount, 12);
    t.is(new Set(ws.docs().map((doc) => doc.sha256)).size, 12);
    t.deepEqual(
      ws.docs().map((doc) => doc.label),
      images.map(label),
    );
  } finally {
    ws.close();
  }
});

test('a missing or empty index is an error, never an empty result', async (t) => {
  const missing = await runCli(['query', flowerImage(1), '--workspace', path.join(workspace, 'nope')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no index at .*nope/);
  const emptyDir = await tempDir('empty-ws');
  Workspace.openForWrite(emptyDir, { model: { name: 'm', sha256: 'a'.repeat(64), dim: 4 }, chunking: {} }).close();
  const empty = await runCli(['query', flowerImage(1), '--workspace', emptyDir]);
  t.is(empty.code, 1);
  t.regex(empty.stderr, /is empty/);
  t.is(empty.stdout, '');
});

test('a broken query image is reported and the exit code is 1', async (t) => {
  const dir = await tempDir('broken-query');
  const broken = path.join(dir, 'broken.jpg');
  await fs.writeFile(broken, 'not a jpeg');
  const result = await runCli(['query', broken, flowerImage(1), '--workspace', workspace]);
  t.is(result.code, 1);
  t.regex(result.stderr, /broken\.jpg: not an image/);
  t.regex(result.stdout, /image_0001\.jpg/, 'the good query still runs');
});

test('a query flow chunking differently from the index is refused with the difference', async (t) => {
  const dir = await tempDir('flow');
  const flow = path.join(dir, 'query.yml');
  const shipped = await fs.readFile(path.join(path.dirname(path.dirname(new URL(import.meta.url).pathname)), '..', 'flows', 'query.yml'), 'utf8');
  await fs.writeFile(flow, shipped.replace('stride: 112', 'stride: 56'));
  const result = await runCli(['query', flowerImage(1), '--workspace', workspace, '--flow', flow]);
  t.is(result.code, 1);
  t.regex(result.stderr, /chunking params: the index used .*"stride":112.*this run uses .*"stride":56/);
});

test('flow file mistakes reach the user as file:line errors', async (t) => {
  const dir = await tempDir('flow');
  const flow = path.join(dir, 'index.yml');
  await fs.writeFile(flow, 'pods:\n  loader:\n    uses: loader\n  chunker:\n    uses: chunker\n    with:\n      stirde: 3\n');
  const result = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', path.join(dir, 'ws'), '--flow', flow]);
  t.is(result.code, 1);
  t.regex(result.stderr, /index\.yml:7: unknown key 'stirde' in pod 'chunker' with: \(did you mean 'stride'\?\)/);
});
