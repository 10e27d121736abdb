/**
 * End to end: index fixture images into a fresh workspace (each run in a fresh process, as the CLI
 * would), then query latency over fixture images on that index, split by stage.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openIndex, type IndexSummary } from '../src/index.js';
import { flowerImage, flowersDir, modelDir } from './fixtures.js';
import type { RankMode } from '../src/search/index.js';
import type { SectionOptions, SectionResult } from './section.js';
import { formatSummary, markdownTable, percentile, summarize, type Summary } from './stats.js';

const FIXTURE_IMAGES = 1360;
const CLASSES = 17;
const run = promisify(execFile);

export interface EndToEndOptions extends SectionOptions {
  /** Fixture images to index (default all 1360; quick 68, evenly over the classes). */
  readonly images?: number;
  /** Query images per latency pass (default 100; quick 20). */
  readonly queries?: number;
}

interface ChildRun {
  summary: IndexSummary;
  wallMs: number;
  /** Process CPU time, all threads (user + system). */
  cpuMs: number;
  maxRssBytes: number;
  /** From the timing hooks in index-child.ts. */
  hooks: { encodeBusyMs: number; extractMs: number; writeMs: number };
  /** Encoder pool settings the index flow used. */
  encoder: { replicas: number; intraOpThreads: number; batchSize: number };
}

/** Indexing stages: how each is timed, and its time in ms for one run. */
const INDEX_STAGES: readonly { name: string; measured: string; ms: (run: ChildRun) => number }[] = [
  { name: 'read + hash', measured: 'loader pod, summed over docs', ms: (r) => r.summary.podTime.loader ?? 0 },
  { name: 'decode + resize', measured: 'normalizer pod (sharp threads), summed over docs', ms: (r) => r.summary.podTime.normalizer ?? 0 },
  { name: 'chunk: boxes + whole-image resize', measured: 'chunker pod, summed over docs', ms: (r) => r.summary.podTime.chunker ?? 0 },
  { name: 'chunk: crop + normalize into the batch', measured: 'kernels.extractChunks, main thread', ms: (r) => r.hooks.extractMs },
  { name: 'encode', measured: 'wall time with a batch in the encoder pool', ms: (r) => r.hooks.encodeBusyMs },
  { name: 'write', measured: 'Workspace.addDocs + close, main thread', ms: (r) => r.hooks.writeMs },
];

const QUERY_STAGES = ['decode', 'encode', 'topk', 'rank', 'lookup'] as const;

export async function benchEndToEnd(options: EndToEndOptions): Promise<SectionResult> {
  const images = Math.min(options.images ?? (options.quick ? 68 : FIXTURE_IMAGES), FIXTURE_IMAGES);
  const queries = options.queries ?? (options.quick ? 20 : 100);
  // Indexing all images takes about a minute a run; three runs keep the suite under 15 minutes.
  const indexRuns = Math.min(options.runs, 3);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-bench-'));
  try {
    const data = images === FIXTURE_IMAGES ? flowersDir : subsetDataDir(path.join(tmp, 'data'), images);
    const workspace = path.join(tmp, 'workspace');
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'index-child.js');
    const runs: ChildRun[] = [];
    for (let i = 0; i < indexRuns; i++) {
      options.log(`end to end: indexing ${images} images, run ${i + 1}/${indexRuns}`);
      fs.rmSync(workspace, { recursive: true, force: true }); // every run starts from an empty workspace
      const { stdout } = await run(process.execPath, [child, data, workspace, modelDir], { maxBuffer: 16 << 20 });
      runs.push(JSON.parse(stdout.trim().split('\n').pop()!) as ChildRun);
    }
    const indexing = indexingFigures(runs);

    options.log(`end to end: query latency, ${options.runs} passes of ${queries} queries`);
    // The default (expanded) and BiMatch in the same run, so their figures compare.
    const latency = await queryLatency(workspace, queries, options.runs, 'expanded');
    const bimatchLatency = await queryLatency(workspace, queries, options.runs, 'bimatch');
    return { data: { images, queries, indexRuns, indexing, latency, bimatchLatency }, markdown: markdown(images, queries, indexing, latency, options.runs, bimatchLatency) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A data folder with `count` fixture images spread evenly over the classes, and their labels.csv. */
function subsetDataDir(dir: string, count: number): string {
  fs.mkdirSync(path.join(dir, 'jpg'), { recursive: true });
  const labels = new Map<string, string>();
  for (const line of fs.readFileSync(path.join(flowersDir, 'labels.csv'), 'utf8').split('\n').slice(1)) {
    const [file, classId, className] = line.split(',');
    if (file && className) labels.set(path.basename(file), `${classId},${className}`);
  }
  const rows = ['file,class_id,class_name'];
  for (const n of spread(count, FIXTURE_IMAGES, CLASSES)) {
    const file = path.basename(flowerImage(n));
    fs.copyFileSync(flowerImage(n), path.join(dir, 'jpg', file));
    rows.push(`jpg/${file},${labels.get(file)}`);
  }
  fs.writeFileSync(path.join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
  return dir;
}

/** `count` image numbers (1-based) out of `total`, spread over `groups` equal consecutive groups. */
export function spread(count: number, total: number, groups: number): number[] {
  const perGroup = total / groups;
  const picks: number[] = [];
  for (let i = 0; i < count; i++) {
    const group = i % groups;
    const within = Math.floor(i / groups);
    const inGroup = Math.ceil((count - group) / groups);
    picks.push(1 + Math.floor(group * perGroup + ((within + 0.5) * perGroup) / inGroup));
  }
  return picks.sort((a, b) => a - b);
}

interface IndexingFigures {
  imagesPerSecond: Summary;
  chunksPerSecond: Summary;
  wallSeconds: Summary;
  peakRssMiB: Summary;
  /** Process CPU ms per image, all threads: far less sensitive to other load on a shared machine than wall time. */
  cpuMsPerImage: Summary;
  cpuMsPerChunk: Summary;
  chunks: number;
  /** Encoder pool settings the index flow used. */
  encoder: ChildRun['encoder'];
  /** Seconds per stage (see INDEX_STAGES for how each is measured). */
  stageSeconds: Record<string, Summary>;
  /** Encoder busy time / wall time, per run: 1 means everything else hid behind the encoder. */
  encoderBusyShare: Summary;
}

function indexingFigures(runs: ChildRun[]): IndexingFigures {
  return {
    imagesPerSecond: summarize(runs.map((r) => r.summary.indexed / (r.wallMs / 1000))),
    chunksPerSecond: summarize(runs.map((r) => r.summary.chunks / (r.wallMs / 1000))),
    wallSeconds: summarize(runs.map((r) => r.wallMs / 1000)),
    peakRssMiB: summarize(runs.map((r) => r.maxRssBytes / 2 ** 20)),
    cpuMsPerImage: summarize(runs.map((r) => r.cpuMs / r.summary.indexed)),
    cpuMsPerChunk: summarize(runs.map((r) => r.cpuMs / r.summary.chunks)),
    chunks: runs[0].summary.chunks,
    encoder: runs[0].encoder,
    stageSeconds: Object.fromEntries(INDEX_STAGES.map((stage) => [stage.name, summarize(runs.map((r) => stage.ms(r) / 1000))])),
    encoderBusyShare: summarize(runs.map((r) => r.hooks.encodeBusyMs / r.wallMs)),
  };
}

type Percentiles = { p50: Summary; p95: Summary; p99: Summary };

/** Per pass, p50/p95/p99 of the total and of each stage; each figure is the median over passes. */
async function queryLatency(workspace: string, queries: number, passes: number, mode: RankMode): Promise<Record<string, Percentiles>> {
  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const files = spread(queries, FIXTURE_IMAGES, CLASSES).map(flowerImage);
    for (const file of files.slice(0, 5)) await searcher.search(file, { top: 10, mode }); // warm-up: first-call costs
    const perPass: Record<string, number[]>[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const samples: Record<string, number[]> = { total: [], ...Object.fromEntries(QUERY_STAGES.map((s) => [s, []])) };
      for (const file of files) {
        const start = performance.now();
        const result = await searcher.search(file, { top: 10, mode });
        samples.total.push(performance.now() - start);
        for (const stage of QUERY_STAGES) samples[stage].push(result.timings[stage]);
      }
      perPass.push(samples);
    }
    const figures: Record<string, Percentiles> = {};
    for (const key of ['total', ...QUERY_STAGES]) {
      const at = (p: number) => summarize(perPass.map((samples) => percentile(samples[key], p)));
      figures[key] = { p50: at(50), p95: at(95), p99: at(99) };
    }
    return figures;
  } finally {
    await searcher.close();
  }
}

function markdown(images: number, queries: number, indexing: IndexingFigures, latency: Record<string, Percentiles>, passes: number, bimatchLatency: Record<string, Percentiles>): string {
  const share = indexing.encoderBusyShare;
  const percent = { ...share, median: share.median * 100, min: share.min * 100, max: share.max * 100 };
  return [
    `Indexing ${images} fixture images (${indexing.chunks} chunks) into a fresh workspace, each run a fresh process (${indexing.wallSeconds.runs} runs; encoder ${indexing.encoder.replicas} × ${indexing.encoder.intraOpThreads} threads, batch ${indexing.encoder.batchSize}, as the index flow sets it):`,
    '',
    markdownTable(
      ['images/s', 'chunks/s', 'wall s', 'CPU ms/image', 'peak RSS MiB'],
      [
        [
          formatSummary(indexing.imagesPerSecond),
          formatSummary(indexing.chunksPerSecond),
          formatSummary(indexing.wallSeconds),
          formatSummary(indexing.cpuMsPerImage, 0),
          formatSummary(indexing.peakRssMiB, 0),
        ],
      ],
    ),
    '',
    `Time by stage, seconds. Pod times are summed over documents, which overlap (up to the flow's prefetch in flight), so stages add up to more than the wall time; the encoder was busy ${formatSummary(percent, 0)} % of the wall time (same runs): the closer to 100 %, the better the rest hides behind it.`,
    '',
    markdownTable(
      ['stage', 'measured as', 's'],
      INDEX_STAGES.map((stage) => [stage.name, stage.measured, formatSummary(indexing.stageSeconds[stage.name], 2)]),
    ),
    '',
    'Compared against: the encoder alone (Encoder section; the issue measured 178 images/s at batch 1 and 212 at batch 32, about 39 s for the ~8.3k chunks of all 1360 images).',
    '',
    `Query latency, ms: ${queries} fixture images on that index, top 10, after 5 warm-up queries (${passes} pass${passes === 1 ? '' : 'es'}; each figure is the median over passes of that pass's percentile, with min–max), the default mode (expanded) then BiMatch:`,
    '',
    markdownTable(
      ['stage', 'expanded p50', 'p95', 'p99', 'bimatch p50', 'p95', 'p99'],
      ['total', ...QUERY_STAGES].map((key) => [key, ...[latency, bimatchLatency].flatMap((l) => [formatSummary(l[key].p50, 2), formatSummary(l[key].p95, 2), formatSummary(l[key].p99, 2)])]),
    ),
    '',
    "decode = read + decode + resize; encode = chunking + the model over the query's chunks (the floor); topk, rank (BiMatch) and lookup (doc records) are what the index adds.",
  ].join('\n');
}
