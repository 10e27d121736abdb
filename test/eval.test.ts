/**
 * `eval` on a small labelled subset (3 classes × 4 fixture images, indexed into a temp workspace):
 * the metrics it reports must equal a straightforward, independent computation from the rankings
 * the searcher produces (and, for the Chamfer mode, from the stored vectors themselves).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { evaluate, type EvalResult } from '../src/eval/evaluate.js';
import type { RankMode } from '../src/search/index.js';
import { indexImages, openIndex } from '../src/index.js';
import { flowerImage, modelDir, projectRoot } from '../bench/fixtures.js';

const run = promisify(execFile);
const CLASSES = [
  { name: 'daffodil', first: 1 },
  { name: 'lily_valley', first: 161 },
  { name: 'crocus', first: 321 },
];
const PER_CLASS = 4;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-eval-'));
const data = path.join(tmp, 'data');
const workspace = path.join(tmp, 'ws');
let result: EvalResult;

test.before(async () => {
  fs.mkdirSync(data);
  const rows = ['file,class_id,class_name'];
  CLASSES.forEach((cls, c) => {
    for (let i = 0; i < PER_CLASS; i++) {
      const file = `img_${cls.name}_${i}.jpg`;
      fs.copyFileSync(flowerImage(cls.first + 7 * i), path.join(data, file));
      rows.push(`${file},${c},${cls.name}`);
    }
  });
  fs.writeFileSync(path.join(data, 'labels.csv'), `${rows.join('\n')}\n`);
  await indexImages({ data, workspace, model: modelDir });
  result = await evaluate({ workspace, data, keep: 11 });
});

test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Textbook metrics of one ranking without ties: relevance flags best first, R = all relevant docs. */
function textbook(relevant: boolean[], totalRelevant: number) {
  const precisionAt = (k: number) => relevant.slice(0, k).filter(Boolean).length / k;
  const ap = (cutoff: number) => {
    let hits = 0;
    let sum = 0;
    relevant.slice(0, cutoff).forEach((rel, i) => {
      if (rel) sum += ++hits / (i + 1);
    });
    return totalRelevant === 0 ? 0 : sum / Math.min(totalRelevant, cutoff);
  };
  return { p1: precisionAt(1), p5: precisionAt(5), p10: precisionAt(10), ap10: ap(10), ap: ap(relevant.length), rprec: totalRelevant === 0 ? 0 : precisionAt(totalRelevant) };
}

/** Mean of the textbook metrics over every order of the tied scores (small ties only). */
function expectedTextbook(ranking: { score: number; relevant: boolean }[], totalRelevant: number) {
  let orders: boolean[][] = [[]];
  for (let start = 0; start < ranking.length;) {
    let end = start;
    while (end < ranking.length && ranking[end].score === ranking[start].score) end++;
    const group = ranking.slice(start, end).map((e) => e.relevant);
    if (group.length > 8) throw new Error(`tie of ${group.length} docs: too many orders to enumerate`);
    const perms = permutations(group);
    orders = orders.flatMap((prefix) => perms.map((p) => [...prefix, ...p]));
    start = end;
  }
  const all = orders.map((order) => textbook(order, totalRelevant));
  const mean = (key: keyof ReturnType<typeof textbook>) => all.reduce((s, m) => s + m[key], 0) / all.length;
  return { p1: mean('p1'), p5: mean('p5'), p10: mean('p10'), ap10: mean('ap10'), ap: mean('ap'), rprec: mean('rprec') };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

function close(t: { true(v: boolean, m?: string): void }, actual: number, expected: number, what: string) {
  t.true(Math.abs(actual - expected) < 1e-9, `${what}: eval ${actual}, independent ${expected}`);
}

/** Independent rankings: the searcher's own output (expanded, bimatch, whole) or Chamfer computed from the raw vectors. */
async function independentRankings(mode: RankMode): Promise<Map<number, { doc: number; score: number }[]>> {
  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const ws = searcher.workspace;
    const matrix = ws.matrix();
    const dim = ws.dim;
    const docs = ws.docs();
    const whole = new Set(ws.wholeChunkRows());
    const rowsOf = (d: (typeof docs)[number]) => Array.from({ length: d.chunkCount }, (_, i) => d.firstChunk + i);
    const out = new Map<number, { doc: number; score: number }[]>();
    for (const q of docs) {
      const kinds = rowsOf(q).map((row) => (whole.has(row) ? 'whole' : 'window'));
      let scored: { doc: number; score: number }[];
      if (mode === 'chamfer') {
        const cos = (a: number, b: number) => {
          let s = 0;
          for (let i = 0; i < dim; i++) s += matrix[a * dim + i] * matrix[b * dim + i];
          return s;
        };
        const windowsOf = (d: (typeof docs)[number]) => rowsOf(d).filter((row) => !whole.has(row));
        const meanOfMax = (from: number[], to: number[]) => from.reduce((sum, a) => sum + Math.max(...to.map((b) => cos(a, b))), 0) / from.length;
        scored = docs
          .filter((d) => d.id !== q.id)
          .map((d) => ({ doc: d.id, score: (meanOfMax(windowsOf(q), windowsOf(d)) + meanOfMax(windowsOf(d), windowsOf(q))) / 2 }))
          .sort((a, b) => b.score - a.score || a.doc - b.doc);
      } else {
        const vectors = matrix.slice(q.firstChunk * dim, (q.firstChunk + q.chunkCount) * dim);
        const res = await searcher.searchChunks(vectors, kinds, { top: docs.length, mode, excludeDoc: q.id });
        // The same-photo hit is first whatever its score: it ranks as +Infinity.
        scored = res.results.map((r) => ({ doc: r.docId, score: r.samePhoto === undefined ? r.score : Infinity }));
      }
      out.set(q.id, scored);
    }
    return out;
  } finally {
    await searcher.close();
  }
}

for (const mode of ['expanded', 'bimatch', 'whole', 'chamfer'] as const) {
  test(`${mode}: eval's metrics equal an independent computation from the rankings`, async (t) => {
    t.is(result.queries, CLASSES.length * PER_CLASS);
    t.is(result.classes.length, CLASSES.length);
    const rankings = await independentRankings(mode);
    const labels = result.docLabels;
    const sums = { p1: 0, p5: 0, p10: 0, ap10: 0, ap: 0, rprec: 0 };
    for (const outcome of result.outcomes) {
      const scored = rankings.get(outcome.doc)!;
      t.false(
        scored.some((s) => s.doc === outcome.doc),
        'the query doc is excluded from its own results',
      );
      // Docs the ranker did not return tie at the bottom.
      const returned = new Set(scored.map((s) => s.doc));
      const full = [
        ...scored.map((s) => ({ score: s.score, relevant: labels[s.doc] === outcome.label })),
        ...labels.flatMap((label, doc) => (doc !== outcome.doc && !returned.has(doc) ? [{ score: -Infinity, relevant: label === outcome.label }] : [])),
      ];
      t.is(full.length, result.docs - 1);
      t.is(outcome.returned[mode], scored.length, 'counts the docs the ranker scored');
      const expected = expectedTextbook(full, PER_CLASS - 1);
      for (const key of Object.keys(sums) as (keyof typeof sums)[]) {
        close(t, outcome.metrics[mode][key], expected[key], `${mode} doc ${outcome.doc} ${key}`);
        sums[key] += expected[key];
      }
      const order = [...scored.map((s) => s.doc), ...labels.flatMap((_, doc) => (doc !== outcome.doc && !returned.has(doc) ? [doc] : []))];
      t.deepEqual(
        outcome.top[mode].map((r) => r.doc),
        order.slice(0, 11),
        "the kept results are the ranker's order, then the rest by doc id",
      );
    }
    for (const key of Object.keys(sums) as (keyof typeof sums)[]) close(t, result.overall[mode][key], sums[key] / result.queries, `${mode} overall ${key}`);
    for (const cls of result.classes) {
      const own = result.outcomes.filter((o) => o.label === cls.label);
      t.is(cls.queries, PER_CLASS);
      close(t, cls.metrics[mode].ap, own.reduce((s, o) => s + o.metrics[mode].ap, 0) / own.length, `${mode} ${cls.label} mAP`);
    }
    t.true(result.overall[mode].p1 > 1 / 3, `${mode} P@1 ${result.overall[mode].p1} beats chance on three classes`);
  });
}

test('labels come from the workspace when --data is not given', async (t) => {
  const fromWorkspace = await evaluate({ workspace, modes: ['whole'] });
  t.deepEqual(fromWorkspace.docLabels, result.docLabels);
  t.deepEqual(fromWorkspace.overall.whole, result.overall.whole);
});

test("BiMatch looks up as many chunks as the query flow's ranker says", async (t) => {
  t.is(result.chunkK, 64, 'the shipped query flow');
  const flow = path.join(tmp, 'query-k2.yml');
  const shipped = fs.readFileSync(path.join(projectRoot, 'flows', 'query.yml'), 'utf8');
  fs.writeFileSync(flow, shipped.replace(/top_k: \d+/, 'top_k: 2'));
  const narrow = await evaluate({ workspace, flow, modes: ['bimatch'] });
  t.is(narrow.chunkK, 2);
  t.true(narrow.meanReturned.bimatch < result.meanReturned.bimatch, `${narrow.meanReturned.bimatch} docs reached with k = 2, ${result.meanReturned.bimatch} with 64`);
});

test('the CLI prints one table, JSON on request, and a self-contained HTML report', async (t) => {
  const cli = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
  const report = path.join(tmp, 'report.html');
  const { stdout } = await run(process.execPath, [cli, 'eval', '--workspace', workspace, '--json', '--report', report, '--top', '3', '--samples', '1']);
  const json = JSON.parse(stdout) as { modes: Record<string, unknown>; overall: Record<string, { ap: number }>; classes: unknown[] };
  t.deepEqual(Object.keys(json.modes), ['expanded', 'bimatch', 'whole', 'chamfer']);
  for (const mode of ['expanded', 'bimatch', 'whole', 'chamfer'] as const) close(t, json.overall[mode].ap, result.overall[mode].ap, `JSON ${mode} mAP`);
  t.is(json.classes.length, CLASSES.length);

  const html = fs.readFileSync(report, 'utf8');
  t.regex(html, /<svg[^>]*>/);
  t.notRegex(html, /(src|href)="(https?:|\/\/|file:)/, 'no external resources');
  const figures = html.match(/<figure class="(query|hit|miss)">\s*<img src="data:image\/jpeg;base64,/g) ?? [];
  t.is(figures.length, CLASSES.length * 1 * (1 + 3 * 4), 'one sample per class: the query plus 3 results for each of 4 modes');

  const text = await run(process.execPath, [cli, 'eval', '--workspace', workspace, '--no-report', '--modes', 'whole']);
  t.regex(text.stdout, /\| ALL\s+\| whole\s+\|\s+12 \|/);
  for (const cls of CLASSES) t.regex(text.stdout, new RegExp(`\\| ${cls.name}\\s+\\| whole `));
  t.false(fs.existsSync(path.join(workspace, 'eval-report.html')), '--no-report writes no report');
});

test('bad arguments exit 2; a missing workspace exits 1 naming it', async (t) => {
  const cli = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
  const badTop = await t.throwsAsync(run(process.execPath, [cli, 'eval', '--workspace', workspace, '--top', '0']));
  t.is((badTop as { code?: number }).code, 2);
  const badMode = await t.throwsAsync(run(process.execPath, [cli, 'eval', '--workspace', workspace, '--modes', 'whole,nope']));
  t.is((badMode as { code?: number }).code, 2);
  t.regex(String((badMode as { stderr?: string }).stderr), /unknown mode "nope"/);
  const missing = path.join(tmp, 'no-such-workspace');
  const noIndex = await t.throwsAsync(run(process.execPath, [cli, 'eval', '--workspace', missing]));
  t.is((noIndex as { code?: number }).code, 1);
  t.true(String((noIndex as { stderr?: string }).stderr).includes(missing));
});
