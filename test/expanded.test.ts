/**
 * The expanded ranking: the TS port against the numpy reference's figures on the fixture index,
 * honest vs leaky leave-one-out on a hand-made state whose scores are worked out here, the stored
 * state (written by an index run, kept consistent on an incremental add and after a kill -9), `query
 * --doc` against searchChunks, and `duplicates` on planted copies.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DocSearch, findDuplicates, LocalChunkIndex, RANKERS, type MatrixIndex } from '../src/search/index.js';
import { expandDoc, learnRankingState, stateMatches } from '../src/search/expansion.js';
import { stateSource } from '../src/search/local-index.js';
import { kernels } from '../src/kernels/index.js';
import { readRankingState, RANKING_STATE_VERSION, type RankingState } from '../src/store/ranking-state.js';
import { indexImages, openIndex } from '../src/index.js';
import { Workspace } from '../src/store/index.js';
import { flowerImage, modelDir, sharedDir } from '../bench/fixtures.js';
import { cliPath, runCli, startCli } from './e2e-helpers.js';

const FIXTURE = path.resolve(sharedDir, '..', 'ws-fixture');
const EXPECTED = path.resolve(sharedDir, '..', 'scratch', 'ranking', 'expected.json');

test('the port ranks the fixture as the numpy reference does (honest leave-one-out, 7 queries)', async (t) => {
  if (!fs.existsSync(FIXTURE) || !fs.existsSync(EXPECTED)) return t.pass(`no ${FIXTURE} or ${EXPECTED} here`);
  const expected = JSON.parse(fs.readFileSync(EXPECTED, 'utf8')) as { samples_honest_loo: Record<string, { top10: { doc: number; class_score: number; inst: number }[] }> };
  const notices: string[] = [];
  const searcher = await openIndex(FIXTURE, { onNotice: (m) => notices.push(m) });
  try {
    for (const [query, sample] of Object.entries(expected.samples_honest_loo)) {
      const doc = searcher.workspace.doc(Number(query))!;
      const dim = searcher.workspace.dim;
      const whole = searcher.workspace.wholeChunkRows()[doc.id];
      const vectors = searcher.workspace.matrix().slice(doc.firstChunk * dim, (doc.firstChunk + doc.chunkCount) * dim);
      const kinds = Array.from({ length: doc.chunkCount }, (_, i) => (doc.firstChunk + i === whole ? 'whole' : 'window'));
      const result = await searcher.searchChunks(vectors, kinds, { mode: 'expanded', top: 10, excludeDoc: doc.id });
      t.deepEqual(
        result.results.map((r) => r.docId),
        sample.top10.map((h) => h.doc),
        `query ${query}: the reference's top 10`,
      );
      // The same-photo hit (first) scores the larger of its class score and its instance cosine.
      const want = (i: number) => (result.results[i].samePhoto === undefined ? sample.top10[i].class_score : Math.min(1, Math.max(sample.top10[i].class_score, sample.top10[i].inst)));
      result.results.forEach((r, i) => t.true(Math.abs(r.score - want(i)) < 1e-4, `query ${query} rank ${i + 1}: ${r.score} vs ${want(i)}`));
    }
  } finally {
    await searcher.close();
  }
  t.is(notices.length, 1, 'a read-only index without ranking.bin is learned in memory, said once');
  t.false(fs.existsSync(path.join(FIXTURE, 'ranking.bin')), 'and nothing is written to it');
});

/** Three docs of one chunk each in 2-d, A = (1, 0), B at 30°, C = (0, 1); whitening = identity. */
function triangleIndex(): { index: MatrixIndex; state: RankingState } {
  const c30 = Math.cos(Math.PI / 6);
  const rows = Float32Array.from([1, 0, c30, 0.5, 0, 1]);
  const base = {
    version: RANKING_STATE_VERSION,
    modelSha256: 'x',
    dim: 2,
    rows: 3,
    docShas: ['a', 'b', 'c'],
    fittedDocs: 3,
    dims: 2,
    instDims: 2,
    neighbours: 31,
    params: {},
    // Instance rows that share nothing with the query (1, 0) once A is left out: no same-photo hit.
    mean: new Float32Array(2),
    projection: Float32Array.from([1, 0, 0, 1]),
    instProjection: Float32Array.from([1, 0, 0, 1]),
    docVectors: rows,
    instance: Float32Array.from([1, 0, 0, 1, 0, 1]),
    docChunkCounts: Int32Array.from([1, 1, 1]),
  };
  const ids = new Int32Array(3 * 31).fill(-1);
  const scores = new Float32Array(3 * 31);
  const lists = [
    [
      [1, c30],
      [2, 0],
    ],
    [
      [0, c30],
      [2, 0.5],
    ],
    [
      [1, 0.5],
      [0, 0],
    ],
  ];
  lists.forEach((list, d) => list.forEach(([id, s], j) => ((ids[d * 31 + j] = id!), (scores[d * 31 + j] = s!))));
  const partial = { ...base, neighbourIds: ids, neighbourScores: scores, expanded: new Float32Array(6), thumbnails: new Float32Array(0), fineThumbnails: new Float32Array(0) } as RankingState;
  for (let d = 0; d < 3; d++) partial.expanded.set(expandDoc(partial, d), d * 2);
  const index: MatrixIndex = {
    location: 'memory',
    dim: 2,
    docCount: 3,
    chunkCount: 3,
    docChunkCount: () => 1,
    chunkDoc: () => Int32Array.from([0, 1, 2]),
    docChunkCounts: () => Int32Array.from([1, 1, 1]),
    wholeChunkRows: () => Int32Array.from([0, 1, 2]),
    chunkCandidates: () => Promise.reject(new Error('unused')),
    wholeTopK: () => Promise.reject(new Error('unused')),
    matrix: () => rows,
    rankingState: () => partial,
  };
  return { index, state: partial };
}

test('honest leave-one-out differs from the leaky one exactly as worked out by hand', async (t) => {
  const { index } = triangleIndex();
  const search = new DocSearch(index);
  const query = { vectors: Float32Array.from([1, 0]), kinds: ['whole' as const] };
  const norm = (v: number[]) => v.map((x) => x / Math.hypot(...v));
  const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
  const c30 = Math.cos(Math.PI / 6);
  const [A, B, C]: number[][] = [
    [1, 0],
    [c30, 0.5],
    [0, 1],
  ];
  const w = (s: number) => Math.max(s, 0) ** 1.5;
  const mix = (g: readonly number[], parts: [number, readonly number[]][]) => norm(parts.reduce((acc, [s, v]) => acc.map((x, i) => x + w(s) * v[i]), [...g]));
  const expectScores = (dB: number[], dC: number[]) => {
    const q = mix(A, [
      [dot(dB, A), dB],
      [dot(dC, A), dC],
    ]);
    return { B: dot(dB, q), C: dot(dC, q) };
  };
  // Leaky: B's expansion still holds the query A; honest: B is expanded from C alone.
  const leakyExpected = expectScores(
    mix(B, [
      [c30, A],
      [0.5, C],
    ]),
    mix(C, [
      [0.5, B],
      [0, A],
    ]),
  );
  const honestExpected = expectScores(mix(B, [[0.5, C]]), mix(C, [[0.5, B]]));
  const honest = await search.rank(query, { mode: 'expanded', excludeDoc: 0 });
  const leaky = await search.rank(query, { mode: 'expanded', excludeDoc: 0, excludeFrom: 'results' });
  const byDoc = (hits: { docId: number; score: number }[]) => Object.fromEntries(hits.map((h) => [h.docId, h.score]));
  for (const [got, want] of [
    [byDoc(honest.hits), honestExpected],
    [byDoc(leaky.hits), leakyExpected],
  ] as const) {
    t.true(Math.abs(got[1] - want.B) < 1e-5, `B: ${got[1]} vs ${want.B}`);
    t.true(Math.abs(got[2] - want.C) < 1e-5, `C: ${got[2]} vs ${want.C}`);
  }
  t.true(leakyExpected.B - honestExpected.B > 0.01, `the leak lifts B: ${leakyExpected.B} vs ${honestExpected.B}`);
  t.is(honest.hits[0].docId, 1);
  t.true(
    honest.hits.every((hit) => hit.samePhoto === undefined),
    'no same-photo hit below the threshold',
  );
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-expanded-'));
const data = path.join(tmp, 'data');
const more = path.join(tmp, 'more');
const workspace = path.join(tmp, 'ws');
const IMAGES = [1, 2, 3, 81, 82, 83, 161, 162, 163, 241, 242, 243];

test.before(async () => {
  fs.mkdirSync(data, { recursive: true });
  for (const n of IMAGES) fs.copyFileSync(flowerImage(n), path.join(data, `image_${n}.jpg`));
  // Planted copies: a re-encoded JPEG of one image and a half-size copy of another.
  await sharp(flowerImage(1)).jpeg({ quality: 70 }).toFile(path.join(data, 'copy_reencoded.jpg'));
  const meta = await sharp(flowerImage(81)).metadata();
  await sharp(flowerImage(81))
    .resize(Math.round(meta.width / 2))
    .jpeg({ quality: 90 })
    .toFile(path.join(data, 'copy_resized.jpg'));
  await indexImages({ data, workspace, model: modelDir });
});
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('duplicates finds the planted copies and groups nothing else', async (t) => {
  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const found = searcher.duplicates();
    const names = found.groups.map((g) => g.map((id) => path.basename(searcher.workspace.doc(id)!.path)).sort());
    t.deepEqual(names.sort(), [
      ['copy_reencoded.jpg', 'image_1.jpg'],
      ['copy_resized.jpg', 'image_81.jpg'],
    ]);
    t.deepEqual(findDuplicates(new LocalChunkIndex(searcher.workspace), kernels).groups, found.groups);
    t.deepEqual(findDuplicates(new LocalChunkIndex(searcher.workspace), kernels, 1.01).groups, [], 'no pair above a cosine of 1');
  } finally {
    await searcher.close();
  }
  const cli = await runCli(['duplicates', '--workspace', workspace, '--json']);
  t.is(cli.code, 0, cli.stderr);
  const json = JSON.parse(cli.stdout) as { threshold: number; groups: { docs: { path: string }[] }[] };
  t.is(json.threshold, 0.98);
  t.is(json.groups.length, 2);
});

test('query --doc equals querying with the stored vectors', async (t) => {
  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const doc = searcher.workspace.docs().find((d) => d.path.endsWith('image_2.jpg'))!;
    const dim = searcher.workspace.dim;
    const whole = searcher.workspace.wholeChunkRows()[doc.id];
    const vectors = searcher.workspace.matrix().slice(doc.firstChunk * dim, (doc.firstChunk + doc.chunkCount) * dim);
    const kinds = Array.from({ length: doc.chunkCount }, (_, i) => (doc.firstChunk + i === whole ? 'whole' : 'window'));
    for (const mode of ['expanded', 'bimatch'] as const) {
      const direct = await searcher.searchChunks(vectors, kinds, { mode, top: 5, excludeDoc: doc.id, excludeFrom: 'results' });
      const byId = await searcher.searchDoc(doc.id, { mode, top: 5 });
      const byPath = await searcher.searchDoc(doc.path, { mode, top: 5 });
      t.deepEqual(byId.results, direct.results, mode);
      t.deepEqual(byPath.results, direct.results, mode);
      t.false(
        byId.results.some((r) => r.docId === doc.id),
        'the doc itself is left out',
      );
    }
    const cli = await runCli(['query', '--workspace', workspace, '--doc', 'image_2.jpg', '--json', '--top', '5']);
    t.is(cli.code, 0, cli.stderr);
    const json = JSON.parse(cli.stdout) as { mode: string; score: string; queries: { results: { docId: number; score: number }[] }[] };
    t.is(json.mode, 'expanded');
    t.is(json.score, RANKERS.expanded.score);
    const direct = await searcher.searchChunks(vectors, kinds, { top: 5, excludeDoc: doc.id, excludeFrom: 'results' });
    t.deepEqual(
      json.queries[0].results.map((r) => r.docId),
      direct.results.map((r) => r.docId),
    );
    const missing = await runCli(['query', '--workspace', workspace, '--doc', 'nope.jpg']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /nope\.jpg: not an indexed doc/);
  } finally {
    await searcher.close();
  }
});

test('--min-score keeps the expanded results scoring at least the threshold', async (t) => {
  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const all = await searcher.searchDoc(0, { top: 20 });
    const cut = all.results[3].score;
    const kept = await searcher.searchDoc(0, { top: 20, minScore: cut });
    t.true(kept.results.length >= 4 && kept.results.every((r) => r.score >= cut));
    t.true(
      all.results.every((r) => r.score >= -1 && r.score <= 1),
      'cosines',
    );
  } finally {
    await searcher.close();
  }
});

test('the state is written by the index run, kept consistent by an incremental add and after a kill -9', async (t) => {
  // Its own copy: the other tests read the first index while this one grows it.
  const workspace = path.join(tmp, 'ws-grown');
  fs.cpSync(path.join(tmp, 'ws'), workspace, { recursive: true });
  const stateOf = () => {
    const read = readRankingState(workspace);
    if (!('state' in read)) throw new Error(read.unusable);
    return read.state;
  };
  const matches = () => {
    const ws = Workspace.openForRead(workspace);
    try {
      return stateMatches(stateOf(), stateSource(ws));
    } finally {
      ws.close();
    }
  };
  t.true(matches(), 'the first index run stored a state learned from the index');
  const fitted = stateOf().fittedDocs;

  // A kill -9 in the middle of adding 12 more images: the stored state is whole (the old one or a new one).
  fs.mkdirSync(more);
  for (const n of [4, 5, 6, 84, 85, 86, 164, 165, 166, 244, 245, 246]) fs.copyFileSync(flowerImage(n), path.join(more, `image_${n}.jpg`));
  const child = startCli(['index', '--data', more, '--workspace', workspace, '--model', modelDir]);
  // Killed on what it reports, not after a guessed delay: the first progress line with some but not all of the 12 done.
  const midway = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const line = /indexing: ([1-9]|1[01])\/12 files[^\n]*/.exec(seen);
      if (line) resolve(line[0]);
    });
    child.once('exit', (code) => reject(new Error(`the index run ended (code ${code}) before it reported a partial add:\n${seen}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.log(`killed at: ${midway}`);
  t.notThrows(stateOf, 'ranking.bin is readable after the kill');
  const notices: string[] = [];
  const searcher = await openIndex(workspace, { model: modelDir, onNotice: (m) => notices.push(m) });
  try {
    const result = await searcher.searchDoc(0, { top: 3 });
    t.is(result.results.length, 3, 'queries work whatever the kill left');
    t.true(notices.length <= 1);
  } finally {
    await searcher.close();
  }

  // The rerun finishes the add: the state is updated, with the whitening kept (a small change).
  const rerun = await runCli(['index', '--data', more, '--workspace', workspace, '--model', modelDir]);
  t.is(rerun.code, 0, rerun.stderr);
  t.true(matches(), 'the state matches the grown index');
  const ws = Workspace.openForRead(workspace);
  try {
    t.is(ws.docCount, IMAGES.length + 2 + 12);
    const state = stateOf();
    t.true(state.fittedDocs === fitted || state.fittedDocs === ws.docCount);
    // Incremental: the same as updating the old state in memory would give, and queries use it without a notice.
    const fresh = learnRankingState(stateSource(ws), kernels, undefined, true).state;
    t.is(fresh.docShas.length, state.docShas.length);
  } finally {
    ws.close();
  }
  const quiet: string[] = [];
  const again = await openIndex(workspace, { model: modelDir, onNotice: (m) => quiet.push(m) });
  try {
    await again.searchDoc(0, { top: 3 });
  } finally {
    await again.close();
  }
  t.deepEqual(quiet, [], 'a current state is used as stored');
  t.true(fs.existsSync(cliPath));
});
