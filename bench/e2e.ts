/**
 * End to end: index fixture images into a fresh workspace (each run in a fresh process, as the CLI
 * would), then query latency over fixture images on that index, split by stage. Both shipped index
 * flows (crops and region pooling; flows/index.yml is one of them) run in the same section,
 * alternating run by run, and their query latencies pass by pass, so their ratios to the crop flow
 * are taken in one run. With `--peer`, the Python peer (../shared/peers/python,
 * when its Debian packages are installed) indexes and queries the same images afterwards, for the
 * ratios of index wall time and query p50.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chunkingOf, loadFlow, openIndex, type IndexSummary, type Searcher } from '../src/index.js';
import { canonicalJson } from '../src/store/index.js';
import { builtinFlowsDir } from '../src/flows/spec.js';
import { flowerImage, flowersDir, modelDir, sharedDir } from './fixtures.js';
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
  /** Also run the Python peer, when installed. */
  readonly peer?: boolean;
}

/** The shipped index flows compared here; flows/index.yml is one of them, and every ratio is to the crop flow's. */
const FLOWS = {
  crops: path.join(builtinFlowsDir, 'index-crops.yml'),
  regions: path.join(builtinFlowsDir, 'index-regions.yml'),
} as const;
type FlowName = keyof typeof FLOWS;
const FLOW_NAMES = Object.keys(FLOWS) as FlowName[];
const BASELINE: FlowName = 'crops';

/** How a flow encodes an image, from the chunking it records. */
function encodingOf(chunking: Record<string, unknown>): string {
  if (chunking.pooling !== 'regions') return 'a pass per window + the whole image';
  return chunking.whole_chunk === 'pooled' ? 'one pass per image, all pooled' : 'one pass per image + the whole image';
}

function byFlow<T>(make: (name: FlowName) => T): Record<FlowName, T> {
  return Object.fromEntries(FLOW_NAMES.map((name) => [name, make(name)])) as Record<FlowName, T>;
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
  { name: 'chunk: boxes', measured: 'chunker pod, summed over docs', ms: (r) => r.summary.podTime.chunker ?? 0 },
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
    const defaultChunking = canonicalJson(chunkingOf(await loadFlow(path.join(builtinFlowsDir, 'index.yml'))));
    const chunkings = await Promise.all(FLOW_NAMES.map(async (name) => chunkingOf(await loadFlow(FLOWS[name]))));
    const defaultFlow = FLOW_NAMES.find((_, i) => canonicalJson(chunkings[i]) === defaultChunking) ?? BASELINE;
    const encodings = byFlow((name) => encodingOf(chunkings[FLOW_NAMES.indexOf(name)]));
    const workspaces = byFlow((name) => path.join(tmp, `workspace-${name}`));
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'index-child.js');
    const runs = byFlow((): ChildRun[] => []);
    for (let i = 0; i < indexRuns; i++) {
      for (const name of FLOW_NAMES) {
        options.log(`end to end: indexing ${images} images with flows/${path.basename(FLOWS[name])}, run ${i + 1}/${indexRuns}`);
        fs.rmSync(workspaces[name], { recursive: true, force: true }); // every run starts from an empty workspace
        const { stdout } = await run(process.execPath, [child, data, workspaces[name], modelDir, FLOWS[name]], { maxBuffer: 16 << 20 });
        runs[name].push(JSON.parse(stdout.trim().split('\n').pop()!) as ChildRun);
      }
    }
    const flows = byFlow((name) => indexingFigures(runs[name]));
    const indexing = flows[defaultFlow];
    // Per run pair: the crop flow's wall ÷ this flow's (how many times faster it indexes).
    const indexSpeedup = byFlow((name) => summarize(runs[BASELINE].map((r, i) => r.wallMs / runs[name][i].wallMs)));

    options.log(`end to end: query latency, ${options.runs} passes of ${queries} queries per flow`);
    const latencies = await queryLatencies(workspaces, queries, options.runs, 'expanded');
    const latency = latencies.figures[defaultFlow];
    // BiMatch on the default flow's index, for its cost beside expanded.
    const bimatchLatency = await queryLatency(workspaces[defaultFlow], queries, options.runs, 'bimatch');
    const peer = options.peer ? await runPeer(data, images, path.join(tmp, 'peer-index'), options.log) : undefined;
    const figures = { images, queries, indexRuns, defaultFlow, encodings, indexing, flows, indexSpeedup, latency, latencies, bimatchLatency, peer };
    return { data: figures, markdown: markdown(images, queries, indexing, latency, options.runs, bimatchLatency) + '\n\n' + flowsMarkdown(figures) };
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

/**
 * Query latency on each flow's index, the flows taking turns pass by pass (each searcher runs the
 * shipped query flow that fits its index). Per pass: p50 of the total per flow, and each flow's p50
 * ÷ the crop flow's.
 */
async function queryLatencies(
  workspaces: Record<FlowName, string>,
  queries: number,
  passes: number,
  mode: RankMode,
): Promise<{ figures: Record<FlowName, Record<string, Percentiles>>; p50Ratio: Record<FlowName, Summary> }> {
  const searchers = {} as Record<FlowName, Searcher>;
  try {
    for (const name of FLOW_NAMES) searchers[name] = await openIndex(workspaces[name], { model: modelDir });
    const files = spread(queries, FIXTURE_IMAGES, CLASSES).map(flowerImage);
    for (const name of FLOW_NAMES) for (const file of files.slice(0, 5)) await searchers[name].search(file, { top: 10, mode });
    const perPass = byFlow((): Record<string, number[]>[] => []);
    for (let pass = 0; pass < passes; pass++) {
      for (const name of FLOW_NAMES) {
        const samples: Record<string, number[]> = { total: [], ...Object.fromEntries(QUERY_STAGES.map((s) => [s, []])) };
        for (const file of files) {
          const start = performance.now();
          const result = await searchers[name].search(file, { top: 10, mode });
          samples.total.push(performance.now() - start);
          for (const stage of QUERY_STAGES) samples[stage].push(result.timings[stage]);
        }
        perPass[name].push(samples);
      }
    }
    const figuresOf = (passSamples: Record<string, number[]>[]) => {
      const out: Record<string, Percentiles> = {};
      for (const key of ['total', ...QUERY_STAGES]) {
        const at = (p: number) => summarize(passSamples.map((samples) => percentile(samples[key], p)));
        out[key] = { p50: at(50), p95: at(95), p99: at(99) };
      }
      return out;
    };
    return {
      figures: byFlow((name) => figuresOf(perPass[name])),
      p50Ratio: byFlow((name) => summarize(perPass[name].map((samples, i) => percentile(samples.total, 50) / percentile(perPass[BASELINE][i].total, 50)))),
    };
  } finally {
    for (const searcher of Object.values(searchers)) await searcher.close();
  }
}

interface PeerFigures {
  readonly wallSeconds: number;
  readonly imagesPerSecond: number;
  readonly encodeSeconds: number;
  readonly queryP50Ms: number;
  readonly queryEncodeP50Ms: number;
  readonly config: Record<string, unknown>;
}

const PEER_PYTHON = '/usr/bin/python3';

/** The Python peer's index (one run) and query (50 queries, numpy top-k) on the same data, or why it did not run. */
async function runPeer(data: string, images: number, indexDir: string, log: (line: string) => void): Promise<PeerFigures | { skipped: string }> {
  const script = path.join(sharedDir, 'peers', 'python', 'peer.py');
  if (!fs.existsSync(script)) return { skipped: `no peer at ${script}` };
  try {
    await run(PEER_PYTHON, ['-c', 'import torch, torchvision, numpy, PIL, faiss']);
  } catch {
    return { skipped: `the peer's packages are not installed (see ${path.join(path.dirname(script), 'README.md')}: python3-torch, python3-torchvision, python3-faiss, … from Debian)` };
  }
  const lines = (stdout: string) =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  log(`end to end: the Python peer indexes ${images} images`);
  const limit = images === FIXTURE_IMAGES ? [] : ['--limit', String(images)];
  const indexed = lines((await run(PEER_PYTHON, [script, 'index', '--data-dir', data, '--index-dir', indexDir, ...limit], { maxBuffer: 64 << 20 })).stdout);
  const index = indexed.find((e) => e.event === 'index') as { wall_s: number; images_per_s: number; encode_s: number } | undefined;
  log('end to end: the Python peer answers 50 queries');
  const queried = lines((await run(PEER_PYTHON, [script, 'query', '--index-dir', indexDir, '--queries', '50'], { maxBuffer: 64 << 20 })).stdout);
  const query = queried.find((e) => e.event === 'query') as { latency: Record<string, { p50_ms: number }> } | undefined;
  if (!index || !query) throw new Error('the Python peer printed no index or query event');
  return {
    wallSeconds: index.wall_s,
    imagesPerSecond: index.images_per_s,
    encodeSeconds: index.encode_s,
    queryP50Ms: query.latency.total_numpy.p50_ms,
    queryEncodeP50Ms: query.latency.encode.p50_ms,
    config: indexed.find((e) => e.event === 'config') ?? {},
  };
}

function flowsMarkdown(f: {
  images: number;
  defaultFlow: FlowName;
  encodings: Record<FlowName, string>;
  flows: Record<FlowName, IndexingFigures>;
  indexSpeedup: Record<FlowName, Summary>;
  latencies: { figures: Record<FlowName, Record<string, Percentiles>>; p50Ratio: Record<FlowName, Summary> };
  peer?: PeerFigures | { skipped: string };
}): string {
  const peer = f.peer && !('skipped' in f.peer) ? f.peer : undefined;
  const rows = FLOW_NAMES.map((name) => {
    const x = f.flows[name];
    const q = f.latencies.figures[name];
    return [
      `${name} (flows/${path.basename(FLOWS[name])}${name === f.defaultFlow ? ', the default' : ''}): ${f.encodings[name]}`,
      formatSummary(x.wallSeconds),
      formatSummary(x.imagesPerSecond),
      formatSummary(x.cpuMsPerImage, 0),
      formatSummary(q.total.p50, 1),
      formatSummary(q.encode.p50, 1),
      name === BASELINE ? '1' : formatSummary(f.indexSpeedup[name], 2),
      name === BASELINE ? '1' : formatSummary(f.latencies.p50Ratio[name], 2),
      ...(peer ? [(x.wallSeconds.median / peer.wallSeconds).toFixed(2), (q.total.p50.median / peer.queryP50Ms).toFixed(2)] : []),
    ];
  });
  const lines = [
    `Both index flows on the same ${f.images} images, alternating run by run; queries (expanded) alternating pass by pass. ÷ ${BASELINE}: per run pair (indexing: images/s; query: p50)${peer ? '; ÷ peer: index wall and query p50' : ''}:`,
    '',
    markdownTable(
      [
        'flow',
        'index wall s',
        'images/s',
        'CPU ms/image',
        'query p50 ms',
        'query encode p50 ms',
        `images/s ÷ ${BASELINE}`,
        `query p50 ÷ ${BASELINE}`,
        ...(peer ? ['index wall ÷ peer', 'query p50 ÷ peer'] : []),
      ],
      rows,
    ),
  ];
  if (f.peer && 'skipped' in f.peer) lines.push('', `Python peer: not run (${f.peer.skipped}).`);
  else if (peer) {
    lines.push(
      '',
      `Python peer (PyTorch + numpy, ../shared/peers/python, one index run and 50 queries after ours): index wall ${peer.wallSeconds.toFixed(1)} s (${peer.imagesPerSecond.toFixed(1)} images/s), query p50 ${peer.queryP50Ms.toFixed(1)} ms (encode ${peer.queryEncodeP50Ms.toFixed(1)}).`,
    );
  }
  return lines.join('\n');
}

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
