/**
 * Kernel benchmarks: native vs TS for chunk extraction, cosine top-k and BiMatch; top-k against
 * usearch `exactSearch` and against a memory-bandwidth probe measured in the same runs; and top-k
 * over memory-mapped .npy matrices of 100k and 1M rows (1M skipped with --quick).
 * Standalone: `node dist/bench/kernels.js [--quick] [--runs N]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import usearch from 'usearch';
import { kernelInfo, loadKernels, openMatrixFile, slidingWindows, type Kernels, type TopKInput } from '../src/kernels/index.js';
import { internalAddon } from '../src/kernels/native.js';
import { NPY_DATA_OFFSET, npyHeader } from '../src/store/index.js';
import type { SectionOptions, SectionResult } from './section.js';
import { formatSummary, markdownTable, summarize, summarizeRatio, timeRuns, type Summary } from './stats.js';

const DIM = 1280;
const K = 100;
/** Bytes the bandwidth probe streams: far beyond any cache, like the 100k matrix (512 MB). */
const PROBE_BYTES = 512 << 20;

/** Fills `out` with rows of unit vectors (xorshift32 noise, row-normalized): cheap and reproducible. */
export function fillUnitRows(out: Float32Array, dim: number, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2147483648 - 1;
  }
  for (let row = 0; row < out.length / dim; row++) {
    const v = out.subarray(row * dim, (row + 1) * dim);
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += v[j] * v[j];
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) v[j] *= scale;
  }
}

export function timeOnce(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (s: Summary) => s.median;
const row = (label: string, ...cells: (Summary | string)[]) => [label, ...cells.map((c) => (typeof c === 'string' ? c : formatSummary(c)))];

/** Top-k on 100k × 1280 in memory: native, TS and usearch for Q = 1 and 7, with the bandwidth probe. */
function benchTopK(native: Kernels, ts: Kernels, runs: number, log: (line: string) => void) {
  const addon = internalAddon()!;
  const threads = addon.threads();
  const rows = 100_000;
  log(`kernels: generating ${rows} x ${DIM} unit vectors`);
  const matrix = new Float32Array(rows * DIM); // byteOffset 0: usearch ignores typed-array offsets
  fillUnitRows(matrix, DIM, 1);
  const queries = new Float32Array(7 * DIM);
  fillUnitRows(queries, DIM, 2);
  const input = (q: number): TopKInput => ({ matrix, rows, dim: DIM, queries: queries.slice(0, q * DIM), k: K });
  const exact = (q: number) => usearch.exactSearch(matrix, queries.slice(0, q * DIM), DIM, K, usearch.MetricKind.IP, threads);

  const t = { sum: [] as number[], copy: [] as number[], sum1: [] as number[], n1: [] as number[], n7: [] as number[], u1: [] as number[], u7: [] as number[] };
  native.cosineTopK(input(7)); // warm-up: pages touched, code paged in
  exact(7);
  for (let run = 0; run < runs; run++) {
    log(`kernels: top-k 100k run ${run + 1}/${runs}`);
    const probe = addon._memoryBandwidth(PROBE_BYTES, threads, 1);
    t.sum.push(probe.sumGBs[0]);
    t.copy.push(probe.copyGBs[0]);
    t.sum1.push(addon._memoryBandwidth(PROBE_BYTES, 1, 1).sumGBs[0]);
    t.n1.push(timeOnce(() => native.cosineTopK(input(1))));
    t.n7.push(timeOnce(() => native.cosineTopK(input(7))));
    t.u1.push(timeOnce(() => exact(1)));
    t.u7.push(timeOnce(() => exact(7)));
  }
  const tsRuns = Math.min(runs, 3);
  log(`kernels: TS top-k (${tsRuns} runs)`);
  const ts1: number[] = [],
    ts7: number[] = [];
  for (let run = 0; run < tsRuns; run++) {
    ts1.push(timeOnce(() => ts.cosineTopK(input(1))));
    ts7.push(timeOnce(() => ts.cosineTopK(input(7))));
  }
  const matrixGB = (rows * DIM * 4) / 1e9;
  const nativeGBs = t.n1.map((ms) => matrixGB / (ms / 1e3));
  return {
    rows,
    dim: DIM,
    k: K,
    threads,
    bandwidthSumGBs: summarize(t.sum),
    bandwidthCopyGBs: summarize(t.copy),
    bandwidthSumOneThreadGBs: summarize(t.sum1),
    nativeQ1Ms: summarize(t.n1),
    nativeQ7Ms: summarize(t.n7),
    usearchQ1Ms: summarize(t.u1),
    usearchQ7Ms: summarize(t.u7),
    tsQ1Ms: summarize(ts1),
    tsQ7Ms: summarize(ts7),
    nativeQ1GBs: summarize(nativeGBs),
    /** Native Q=1 streaming rate over the probe's sum rate, per run (target ≥ 0.8). */
    nativeQ1OfBandwidth: summarizeRatio(nativeGBs, t.sum),
    /** Native Q=7 time over Q=1 time, per run (target ≤ 1.3). */
    nativeQ7OverQ1: summarizeRatio(t.n7, t.n1),
    /** usearch time over native time, per run (target ≥ 5 for Q=7). */
    usearchOverNativeQ1: summarizeRatio(t.u1, t.n1),
    usearchOverNativeQ7: summarizeRatio(t.u7, t.n7),
    tsOverNativeQ7: summarize([median(summarize(ts7)) / median(summarize(t.n7))]),
  };
}

/** Sliding-window chunks of a 384×256 RGB image (6 windows of 224×224), native vs TS. */
async function benchChunks(native: Kernels, ts: Kernels, runs: number) {
  const [width, height] = [384, 256];
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const image = { data, width, height, channels: 3 as const };
  const boxes = slidingWindows(width, height, 224, 112);
  const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
  const out = new Float32Array(boxes.length * 3 * 224 * 224);
  const images = 20;
  const per = async (k: Kernels) =>
    (
      await timeRuns(runs, () => {
        for (let i = 0; i < images; i++) k.extractChunks(image, boxes, norm, out, 0);
      })
    ).map((ms) => ms / images);
  const nativeMs = await per(native),
    tsMs = await per(ts);
  return { image: `${width}x${height} RGB`, chunks: boxes.length, nativeMsPerImage: summarize(nativeMs), tsMsPerImage: summarize(tsMs), tsOverNative: summarizeRatio(tsMs, nativeMs) };
}

/** BiMatch for 7 query chunks × k = 100 over 100k chunks in docs of 7, native vs TS. */
async function benchBiMatch(native: Kernels, ts: Kernels, runs: number) {
  const rows = 100_000,
    dim = 64,
    chunksPerDoc = 7,
    queryChunks = 7;
  const matrix = new Float32Array(rows * dim);
  fillUnitRows(matrix, dim, 3);
  const queries = new Float32Array(queryChunks * dim);
  fillUnitRows(queries, dim, 4);
  const topk = native.cosineTopK({ matrix, rows, dim, queries, k: K });
  const docs = Math.ceil(rows / chunksPerDoc);
  const chunkDoc = Int32Array.from({ length: rows }, (_, r) => Math.floor(r / chunksPerDoc));
  const docChunkCounts = Int32Array.from({ length: docs }, (_, d) => Math.min(chunksPerDoc, rows - d * chunksPerDoc));
  const input = { topk, queryChunks, chunkDoc, docChunkCounts };
  const calls = 200;
  const per = async (k: Kernels) =>
    (
      await timeRuns(runs, () => {
        for (let i = 0; i < calls; i++) k.biMatch(input);
      })
    ).map((ms) => (ms / calls) * 1e3);
  const nativeUs = await per(native),
    tsUs = await per(ts);
  return { queryChunks, k: K, docs, nativeUsPerCall: summarize(nativeUs), tsUsPerCall: summarize(tsUs), tsOverNative: summarizeRatio(tsUs, nativeUs) };
}

/** Writes a rows × DIM .npy of unit vectors in slabs (never the whole matrix in memory). */
function writeNpy(file: string, rows: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, npyHeader(rows, DIM));
    const slabRows = 16_384;
    const slab = new Float32Array(slabRows * DIM);
    for (let start = 0; start < rows; start += slabRows) {
      const count = Math.min(slabRows, rows - start);
      fillUnitRows(slab, DIM, 17 + start);
      fs.writeSync(fd, new Uint8Array(slab.buffer, 0, count * DIM * 4));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Top-k over a memory-mapped .npy of `rows` × 1280: open time, resident memory, Q = 1 and 7. */
function benchScale(native: Kernels, rows: number, runs: number, log: (line: string) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-bench-'));
  const file = path.join(dir, 'matrix.npy');
  try {
    log(`kernels: writing ${rows} x ${DIM} .npy (${((rows * DIM * 4) / 1e9).toFixed(1)} GB)`);
    writeNpy(file, rows);
    const rssBefore = process.memoryUsage().rss;
    let matrix: Float32Array | undefined;
    const openMs = timeOnce(() => (matrix = openMatrixFile(file, NPY_DATA_OFFSET, rows, DIM)));
    const rssOpen = process.memoryUsage().rss;
    const queries = new Float32Array(7 * DIM);
    fillUnitRows(queries, DIM, 5);
    const q1: number[] = [],
      q7: number[] = [];
    for (let run = 0; run < runs; run++) {
      log(`kernels: top-k ${rows} mapped run ${run + 1}/${runs}`);
      q1.push(timeOnce(() => native.cosineTopK({ matrix: matrix!, rows, dim: DIM, queries: queries.subarray(0, DIM), k: K })));
      q7.push(timeOnce(() => native.cosineTopK({ matrix: matrix!, rows, dim: DIM, queries, k: K })));
    }
    const rssScanned = process.memoryUsage().rss;
    return {
      rows,
      openMs,
      rssBytesPerRowAfterOpen: (rssOpen - rssBefore) / rows,
      /** Resident after scans: the mapped pages the page cache holds (file-backed, reclaimable). */
      rssBytesPerRowAfterScan: (rssScanned - rssBefore) / rows,
      q1Ms: summarize(q1),
      q7Ms: summarize(q7),
      q7OverQ1: summarizeRatio(q7, q1),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export type KernelBenchReport = Record<string, unknown> & { info: ReturnType<typeof kernelInfo> };

export async function benchKernels(options: Partial<SectionOptions> & { quick: boolean }): Promise<SectionResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runs = options.runs ?? (options.quick ? 2 : 5);
  const info = kernelInfo();
  if (info.kernels !== 'native') {
    return { data: { info, skipped: info.reason }, markdown: `Native kernels not loaded (${info.reason}): nothing to compare.` };
  }
  const native = loadKernels('native'),
    ts = loadKernels('ts');
  const chunks = await benchChunks(native, ts, runs);
  const bimatch = await benchBiMatch(native, ts, runs);
  const topk = benchTopK(native, ts, runs, log);
  const scale = [benchScale(native, 100_000, runs, log)];
  if (!options.quick) scale.push(benchScale(native, 1_000_000, runs, log));
  const data: KernelBenchReport = { info, chunks, bimatch, topk, scale };

  const f = (s: Summary, digits = 1) => formatSummary(s, digits);
  const markdown = [
    `Native kernels: SIMD ${info.simd} (supported: ${info.simdSupported?.join(', ')}), ${topk.threads} threads; median (min–max) of ${runs} runs.`,
    '',
    markdownTable(
      ['kernel', 'native', 'TS', 'TS / native', 'target'],
      [
        row(`chunk extraction, ms per ${chunks.image} image (${chunks.chunks} chunks)`, chunks.nativeMsPerImage, chunks.tsMsPerImage, chunks.tsOverNative, '≥ 5×'),
        row(`BiMatch, µs per call (${bimatch.queryChunks} query chunks × k ${bimatch.k})`, bimatch.nativeUsPerCall, bimatch.tsUsPerCall, bimatch.tsOverNative, '≥ 10×'),
        row(`top-k ${topk.rows / 1000}k×${DIM}, Q = 7, ms`, topk.nativeQ7Ms, topk.tsQ7Ms, topk.tsOverNativeQ7, ''),
      ],
    ),
    '',
    markdownTable(
      ['top-k 100k×1280, k = 100', 'Q = 1', 'Q = 7', 'target'],
      [
        row('native, ms', topk.nativeQ1Ms, topk.nativeQ7Ms, ''),
        row('usearch exactSearch (IP), ms', topk.usearchQ1Ms, topk.usearchQ7Ms, ''),
        row('TS, ms', topk.tsQ1Ms, topk.tsQ7Ms, ''),
        row('usearch / native', topk.usearchOverNativeQ1, topk.usearchOverNativeQ7, '≥ 5× at Q = 7'),
        ['native Q=7 / Q=1', '', f(topk.nativeQ7OverQ1, 2), '≤ 1.3'],
        row('native Q=1 streaming, GB/s', topk.nativeQ1GBs, '', ''),
        [`memory probe (${topk.threads} threads): sum / copy GB/s`, `${f(topk.bandwidthSumGBs)} / ${f(topk.bandwidthCopyGBs)}`, '', ''],
        ['native Q=1 rate / probe sum rate', f(topk.nativeQ1OfBandwidth, 2), '', '≥ 0.8'],
      ],
    ),
    '',
    markdownTable(
      ['memory-mapped .npy', 'open ms', 'RSS B/row open', 'RSS B/row scanned', 'Q = 1 ms', 'Q = 7 ms', 'Q7/Q1'],
      scale.map((s) => [`${s.rows / 1000}k×${DIM}`, s.openMs.toFixed(2), s.rssBytesPerRowAfterOpen.toFixed(1), s.rssBytesPerRowAfterScan.toFixed(0), f(s.q1Ms), f(s.q7Ms), f(s.q7OverQ1, 2)]),
    ),
    options.quick ? '\n(1M rows skipped with --quick.)' : '',
  ].join('\n');
  return { data, markdown };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const runsAt = args.indexOf('--runs');
  const result = await benchKernels({ quick: args.includes('--quick'), runs: runsAt >= 0 ? Number(args[runsAt + 1]) : undefined });
  process.stdout.write(`${result.markdown}\n\n${JSON.stringify(result.data, null, 2)}\n`);
}
