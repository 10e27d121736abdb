/**
 * The bench suite's plumbing, kept cheap: only the end-to-end section, on 17 images and 3 queries,
 * one run. Checks the results file has the shape the README and later comparisons rely on (no
 * timing assertions: speed lives in bench/, not in tests).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../bench/fixtures.js';
import type { BenchResults } from '../bench/run.js';
import type { Summary } from '../bench/stats.js';

const run = promisify(execFile);

/** The end-to-end section's figures that this test reads. */
interface EndToEndFigures {
  readonly images: number;
  readonly indexRuns: number;
  readonly indexing: Record<'imagesPerSecond' | 'chunksPerSecond' | 'wallSeconds' | 'peakRssMiB' | 'encoderBusyShare', Summary> & {
    readonly chunks: number;
    readonly stageSeconds: Record<string, Summary>;
  };
  /** Per stage, per percentile. */
  readonly latency: Record<string, Record<string, Summary>>;
  /** Which shipped flow flows/index.yml is, and both flows' figures from the same run. */
  readonly defaultFlow: 'crops' | 'regions';
  readonly flows: Record<'crops' | 'regions', { readonly imagesPerSecond: Summary; readonly chunks: number }>;
  readonly indexSpeedup: Record<'crops' | 'regions', Summary>;
  readonly latencies: { readonly p50Ratio: Record<'crops' | 'regions', Summary> };
}

type Results = Omit<BenchResults, 'sections'> & { readonly sections: { readonly endToEnd: EndToEndFigures } };

test('bench --quick writes a results JSON with machine, figures and summaries', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-bench-test-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const out = path.join(tmp, 'results.json');
  const args = [path.join(projectRoot, 'dist', 'bench', 'main.js'), '--quick', '--sections', 'endToEnd', '--images', '17', '--queries', '3', '--runs', '1', '--out', out];
  const { stdout } = await run(process.execPath, args).catch((error: { stderr?: string }) => {
    throw new Error(`bench failed:\n${error.stderr}`);
  });
  const results = JSON.parse(fs.readFileSync(out, 'utf8')) as Results;
  t.is(results.version, 1);
  t.true(results.quick);
  t.is(results.runs, 1);
  for (const key of ['host', 'cpuModel', 'cores', 'cpuSimd', 'kernels', 'node']) t.true(key in results.machine, `machine.${key}`);
  t.deepEqual(Object.keys(results.sections), ['endToEnd']);
  t.deepEqual(results.failed, {});
  const e2e = results.sections.endToEnd;
  t.is(e2e.images, 17);
  t.is(e2e.indexRuns, 1);
  for (const figure of ['imagesPerSecond', 'chunksPerSecond', 'wallSeconds', 'peakRssMiB', 'encoderBusyShare'] as const) {
    t.deepEqual(Object.keys(e2e.indexing[figure]).sort(), ['max', 'median', 'min', 'runs'], figure);
    t.true(e2e.indexing[figure].median > 0, `${figure} is positive`);
  }
  t.true(e2e.indexing.chunks >= 17 * 2, 'every image gave windows and a whole-image chunk');
  t.deepEqual(Object.keys(e2e.indexing.stageSeconds), ['read + hash', 'decode + resize', 'chunk: boxes', 'chunk: crop + normalize into the batch', 'encode', 'write']);
  t.deepEqual(Object.keys(e2e.latency), ['total', 'decode', 'encode', 'topk', 'rank', 'lookup']);
  for (const stage of Object.values(e2e.latency)) t.deepEqual(Object.keys(stage), ['p50', 'p95', 'p99']);
  t.true(e2e.latency.total.p50.median >= e2e.latency.encode.p50.median, 'a query takes at least its encode time');
  t.deepEqual(Object.keys(e2e.flows), ['crops', 'regions']);
  t.is(e2e.flows.regions.chunks, e2e.flows.crops.chunks, 'region pooling gives the same chunks as the crop flow');
  t.deepEqual(e2e.indexing as unknown, e2e.flows[e2e.defaultFlow] as unknown, "indexing is the default flow's figures");
  t.true(e2e.indexSpeedup.regions.median > 0 && e2e.latencies.p50Ratio.regions.median > 0);
  t.is(e2e.indexSpeedup.crops.median, 1, 'the crop flow is the baseline of the ratios');

  t.regex(stdout, /^# flower-native benchmark \(--quick\)/);
  t.regex(stdout, /\*\*Machine\*\*: .+ cores, CPU SIMD/);
  t.regex(stdout, /## End to end\n/);
  t.regex(stdout, /\| total \| [\d.]+ \|/);
  t.regex(stdout, /\| regions \(flows\/index-regions\.yml\): one pass per image, all pooled \|( [\d.()–]+ \|){6}/);
  t.true(stdout.includes(out), 'names the results file');
  t.is(fs.readFileSync(out.replace(/\.json$/, '.md'), 'utf8'), stdout, 'the summary is saved beside the figures');
});

test('bench rejects an unknown section with a usage error', async (t) => {
  const error = await t.throwsAsync(run(process.execPath, [path.join(projectRoot, 'dist', 'bench', 'main.js'), '--sections', 'nope']));
  t.is((error as { code?: number }).code, 2);
  t.regex(String((error as { stderr?: string }).stderr), /unknown section "nope"/);
});

test('compare-addons times two addon builds side by side and checks its arguments', async (t) => {
  const addon = path.join(projectRoot, 'build', 'Release', 'flower_native.node');
  if (!fs.existsSync(addon)) return t.pass('no addon built: nothing to compare');
  const script = path.join(projectRoot, 'dist', 'bench', 'compare-addons.js');
  const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'flower-compare-')), 'copy.node');
  fs.copyFileSync(addon, copy);
  t.teardown(() => fs.rmSync(path.dirname(copy), { recursive: true, force: true }));
  const { stdout } = await run(process.execPath, [script, addon, copy, '--rows', '3000', '--rounds', '2']);
  t.regex(stdout, /^top-k 3000×1280, k 100, 2 rounds: median \(min–max\) ms$/m);
  t.is(stdout.match(/^ {2}Q = 1 [\d.]+ \([\d.]+–[\d.]+\) {3}Q = 7 [\d.]+ \([\d.]+–[\d.]+\) {3}Q7\/Q1 per round [\d.]+ /gm)?.length, 2);
  await t.throwsAsync(run(process.execPath, [script, addon, '--rows', '0']), { message: /--rows needs a positive integer/ });
});
