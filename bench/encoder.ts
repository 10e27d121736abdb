/**
 * Encoder throughput: chunks/s of the EncoderPool on real fixture chunks, for batch sizes
 * 1–64 and thread layouts (replicas × intra-op threads) 1×1, 1×2, 2×1, 2×2, plus 1×2 with
 * onnxruntime's spinning allowed. Each run pushes the same chunks through with enough batches in
 * flight to keep every worker busy; settings are measured round-robin so machine noise spreads
 * over all of them. Then the float model against its int8 copy at the flows' settings, alternately.
 * Standalone: `node dist/bench/encoder.js [--quick] [--runs N] [--int8-model <dir>]`.
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EncoderPool, defaultEncoderSettings, encoderInfo } from '../src/encoder/index.js';
import { decodeImage } from '../src/image/index.js';
import { kernels, slidingWindows } from '../src/kernels/index.js';
import { loadModel, type LoadedModel } from '../src/model/index.js';
import { quantizedCopy } from '../src/model/quantize.js';
import { flowerImage, flowersJpgDir, modelDir as fixtureModelDir } from './fixtures.js';
import type { SectionOptions, SectionResult } from './section.js';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.js';

export interface EncoderBenchOptions extends Partial<SectionOptions> {
  readonly quick: boolean;
  /** Model folder (default: the fixture model). */
  readonly modelDir?: string;
  /** int8 copy of the model to compare against (default: quantized from it here, calibrated on the fixture images). */
  readonly int8ModelDir?: string;
}

/** fp32 against int8 at one pool setting, measured alternately in the same rounds. */
export interface PrecisionComparison {
  readonly replicas: number;
  readonly intraOpThreads: number;
  readonly batchSize: number;
  readonly fp32: { chunksPerSecond: Summary; cpuMsPerChunk: Summary };
  readonly int8: { chunksPerSecond: Summary; cpuMsPerChunk: Summary };
  /** int8 chunks/s ÷ fp32 chunks/s, per round. */
  readonly speedup: Summary;
}

export interface EncoderBenchSetting {
  readonly replicas: number;
  readonly intraOpThreads: number;
  readonly batchSize: number;
  readonly allowSpinning: boolean;
  /** Chunks per second over the runs (wall clock: what a user waits for). */
  readonly chunksPerSecond: Summary;
  /** Process CPU milliseconds per chunk (all threads): efficiency, much less sensitive than wall time to other load on a shared machine. */
  readonly cpuMsPerChunk: Summary;
  /** chunks/s ÷ the reference setting's chunks/s in the same round (slow load drifts cancel out). */
  readonly vsReference: Summary;
}

export interface EncoderBenchReport extends SectionResult {
  readonly data: {
    readonly model: string;
    readonly cores: number;
    readonly onnxruntime: string;
    readonly chunksPerRun: number;
    /** The setting every ratio is taken against: 1 × 2 at batch 32, the issue's own measurement. */
    readonly reference: { replicas: number; intraOpThreads: number; batchSize: number };
    readonly settings: EncoderBenchSetting[];
    /** The fastest measured setting (spinning off), to compare with the defaults. */
    readonly best: EncoderBenchSetting;
    readonly defaults: ReturnType<typeof defaultEncoderSettings>;
    readonly precision: { readonly int8Model: string; readonly int8Sha256: string; readonly settings: PrecisionComparison[] };
  };
}

interface Layout {
  readonly replicas: number;
  readonly intraOpThreads: number;
  readonly allowSpinning: boolean;
}

/** Distinct normalized chunks cut from fixture photos with the default chunking (256 px, 224 windows, stride 112). */
async function fixtureChunks(model: LoadedModel, count: number): Promise<Float32Array> {
  const { width, height, norm } = model.input;
  const size = 3 * width * height;
  const out = new Float32Array(count * size);
  let filled = 0;
  for (let n = 1; filled < count; n += 37) {
    const image = await decodeImage(flowerImage(((n - 1) % 1360) + 1), { shorterSide: 256 });
    const boxes = slidingWindows(image.width, image.height, width, 112).slice(0, count - filled);
    kernels.extractChunks(image, boxes, norm, out, filled);
    filled += boxes.length;
  }
  return out;
}

/** Wall seconds and process CPU seconds to encode `chunks` in batches of `batchSize`, 2 batches in flight per worker. */
export async function timeRun(pool: EncoderPool, chunks: Float32Array, batchSize: number): Promise<{ wall: number; cpu: number }> {
  const size = pool.chunkSize;
  const total = chunks.length / size;
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const first = next;
      const count = Math.min(batchSize, total - first);
      next += count;
      await pool.encode(chunks.slice(first * size, (first + count) * size), count);
    }
  };
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(Array.from({ length: 2 * pool.replicas }, worker));
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (performance.now() - start) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

/**
 * The float and int8 models at the index flow's setting (2 × 1) and the query flow's (1 × 2), batch 16:
 * both pools stay open and every round times each in turn, so load drifts hit both.
 */
async function comparePrecisions(fp32: LoadedModel, int8: LoadedModel, chunks: Float32Array, runs: number, log: (line: string) => void): Promise<PrecisionComparison[]> {
  const layouts = [
    { replicas: 2, intraOpThreads: 1, batchSize: 16 },
    { replicas: 1, intraOpThreads: 2, batchSize: 16 },
  ];
  const count = chunks.length / (3 * fp32.input.width * fp32.input.height);
  const results: PrecisionComparison[] = [];
  for (const layout of layouts) {
    const pools = { fp32: await EncoderPool.open({ model: fp32, ...layout }), int8: await EncoderPool.open({ model: int8, ...layout }) };
    const samples = { fp32: { rate: [] as number[], cpu: [] as number[] }, int8: { rate: [] as number[], cpu: [] as number[] } };
    try {
      for (const pool of Object.values(pools)) await timeRun(pool, chunks, layout.batchSize);
      for (let run = 0; run < runs; run++) {
        for (const precision of ['fp32', 'int8'] as const) {
          const { wall, cpu } = await timeRun(pools[precision], chunks, layout.batchSize);
          samples[precision].rate.push(count / wall);
          samples[precision].cpu.push((cpu * 1000) / count);
        }
        log(
          `encoder: ${layout.replicas}x${layout.intraOpThreads}/${layout.batchSize} run ${run + 1}/${runs}: fp32 ${samples.fp32.rate.at(-1)!.toFixed(1)}, int8 ${samples.int8.rate.at(-1)!.toFixed(1)} chunks/s`,
        );
      }
    } finally {
      await pools.fp32.close();
      await pools.int8.close();
    }
    const of = (s: { rate: number[]; cpu: number[] }) => ({ chunksPerSecond: summarize(s.rate), cpuMsPerChunk: summarize(s.cpu) });
    results.push({ ...layout, fp32: of(samples.fp32), int8: of(samples.int8), speedup: summarize(samples.int8.rate.map((r, i) => r / samples.fp32.rate[i])) });
  }
  return results;
}

/** The int8 model to compare: the given folder, or the fixture model's int8 copy (default calibration on the fixture images), kept in the temp folder between runs. */
async function int8Model(opts: EncoderBenchOptions, log: (line: string) => void): Promise<LoadedModel> {
  if (opts.int8ModelDir) return loadModel(opts.int8ModelDir);
  const float = await loadModel(opts.modelDir ?? fixtureModelDir);
  log('encoder: int8 copy of the model (quantized on first use)');
  return quantizedCopy({ modelDir: opts.modelDir ?? fixtureModelDir, calibrationDir: flowersJpgDir, outDir: path.join(os.tmpdir(), `flower-native-bench-int8-${float.sha256.slice(0, 16)}`) });
}

export async function benchEncoder(opts: EncoderBenchOptions): Promise<EncoderBenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runs = opts.runs ?? (opts.quick ? 2 : 5);
  const batchSizes = opts.quick ? [1, 16, 32] : [1, 8, 16, 32, 64];
  const layouts: Layout[] = [
    { replicas: 1, intraOpThreads: 1, allowSpinning: false },
    { replicas: 1, intraOpThreads: 2, allowSpinning: false },
    { replicas: 2, intraOpThreads: 1, allowSpinning: false },
    { replicas: 2, intraOpThreads: 2, allowSpinning: false },
    { replicas: 1, intraOpThreads: 2, allowSpinning: true },
  ].filter((l) => !opts.quick || l.replicas * l.intraOpThreads === 2);
  // 2 × the largest batch, so every run ends with both workers equally loaded; short runs make a
  // round (every setting once) short, so settings compared within a round saw similar load.
  const chunksPerRun = 2 * Math.max(...batchSizes);
  const reference = { replicas: 1, intraOpThreads: 2, batchSize: 32 };

  const model = await loadModel(opts.modelDir ?? fixtureModelDir);
  log(`encoder: cutting ${chunksPerRun} fixture chunks`);
  const chunks = await fixtureChunks(model, chunksPerRun);

  const samples = new Map<string, number[]>();
  const cpuSamples = new Map<string, number[]>();
  const key = (l: Layout, batch: number) => `${l.replicas}x${l.intraOpThreads}${l.allowSpinning ? '+spin' : ''}/${batch}`;
  // All pools stay open (idle workers block, they do not spin) so every round measures every setting.
  const pools: EncoderPool[] = [];
  try {
    for (const layout of layouts) {
      const pool = await EncoderPool.open({ model, ...layout, batchSize: 1 });
      pools.push(pool);
      // Warm-up: each session's memory arena grows to the largest batch once, outside the timings.
      for (const batch of batchSizes) await timeRun(pool, chunks.slice(0, Math.min(chunksPerRun, 2 * batch * pool.replicas) * pool.chunkSize), batch);
    }
    for (let run = 0; run < runs; run++) {
      for (const [i, layout] of layouts.entries()) {
        for (const batch of batchSizes) {
          const { wall, cpu } = await timeRun(pools[i], chunks, batch);
          const k = key(layout, batch);
          samples.set(k, [...(samples.get(k) ?? []), chunksPerRun / wall]);
          cpuSamples.set(k, [...(cpuSamples.get(k) ?? []), (cpu * 1000) / chunksPerRun]);
          log(`encoder: ${k} run ${run + 1}/${runs}: ${(chunksPerRun / wall).toFixed(1)} chunks/s, ${((cpu * 1000) / chunksPerRun).toFixed(1)} CPU ms/chunk`);
        }
      }
    }
  } finally {
    for (const pool of pools) await pool.close();
  }
  const int8 = await int8Model(opts, log);
  const precision = await comparePrecisions(model, int8, chunks, runs, log);

  const referenceSamples = samples.get(key({ ...reference, allowSpinning: false }, reference.batchSize))!;
  const ratios = new Map([...samples].map(([k, v]) => [k, v.map((x, i) => x / referenceSamples[i])]));
  const settings: EncoderBenchSetting[] = layouts.flatMap((l) =>
    batchSizes.map((batchSize) => {
      const k = key(l, batchSize);
      return { ...l, batchSize, chunksPerSecond: summarize(samples.get(k)!), cpuMsPerChunk: summarize(cpuSamples.get(k)!), vsReference: summarize(ratios.get(k)!) };
    }),
  );
  const best = settings.filter((s) => !s.allowSpinning).reduce((a, b) => (b.chunksPerSecond.median > a.chunksPerSecond.median ? b : a));
  const defaults = defaultEncoderSettings();
  const info = encoderInfo(defaults);
  const tableOf = (from: Map<string, number[]>, digits: number) =>
    markdownTable(
      ['replicas × intra-op threads', ...batchSizes.map((b) => `batch ${b}`)],
      layouts.map((l) => [`${l.replicas} × ${l.intraOpThreads}${l.allowSpinning ? ' (spinning on)' : ''}`, ...batchSizes.map((b) => formatSummary(summarize(from.get(key(l, b))!), digits))]),
    );
  const markdown = [
    `Chunks/s through EncoderPool (${model.name}, onnxruntime ${info.onnxruntime}, ${os.availableParallelism()} cores), ${chunksPerRun} fixture chunks per run, median (min–max) of ${runs} runs. Spinning off unless noted.`,
    tableOf(samples, 0),
    `Throughput ÷ that of 1 × 2 at batch ${reference.batchSize} in the same round (per-round ratios; slow load drifts cancel out):`,
    tableOf(ratios, 2),
    'Process CPU ms per chunk (all threads; less sensitive to other load on the machine than chunks/s):',
    tableOf(cpuSamples, 1),
    `fp32 against ${int8.name} (static int8 QDQ, sha256 ${int8.sha256.slice(0, 12)}…), measured alternately in the same rounds:`,
    markdownTable(
      ['replicas × intra-op threads', 'batch', 'fp32 chunks/s', 'int8 chunks/s', 'int8 ÷ fp32', 'fp32 CPU ms/chunk', 'int8 CPU ms/chunk'],
      precision.map((p) => [
        `${p.replicas} × ${p.intraOpThreads}`,
        String(p.batchSize),
        formatSummary(p.fp32.chunksPerSecond, 0),
        formatSummary(p.int8.chunksPerSecond, 0),
        formatSummary(p.speedup, 2),
        formatSummary(p.fp32.cpuMsPerChunk, 1),
        formatSummary(p.int8.cpuMsPerChunk, 1),
      ]),
    ),
    `Fastest: ${best.replicas} × ${best.intraOpThreads}, batch ${best.batchSize} (${formatSummary(best.chunksPerSecond, 0)}). Defaults: ${defaults.replicas} × ${defaults.intraOpThreads}, batch ${defaults.batchSize}. Compared against: the issue's 178 images/s at batch 1 and 212 at batch 32 (2 intra-op threads, one process).`,
  ].join('\n\n');
  return {
    data: {
      model: model.name,
      cores: os.availableParallelism(),
      onnxruntime: info.onnxruntime,
      chunksPerRun,
      reference,
      settings,
      best,
      defaults,
      precision: { int8Model: int8.name, int8Sha256: int8.sha256, settings: precision },
    },
    markdown,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const runsAt = args.indexOf('--runs');
  const int8At = args.indexOf('--int8-model');
  const report = await benchEncoder({ quick: args.includes('--quick'), runs: runsAt >= 0 ? Number(args[runsAt + 1]) : undefined, int8ModelDir: int8At >= 0 ? args[int8At + 1] : undefined });
  process.stdout.write(`${report.markdown}\n`);
}
