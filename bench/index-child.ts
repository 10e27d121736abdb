/**
 * One indexing run for the end-to-end bench, in its own process so its peak RSS is its own and it
 * starts cold like the CLI does: `node dist/bench/index-child.js <data> <workspace> <model> [flow]`.
 * Prints one JSON line: the index summary, wall and CPU time, peak RSS and stage timings.
 *
 * Stage timings come from timing hooks installed here (the product code carries none): pod times
 * from the flow overlap across the documents in flight, so the stages that run on the main thread
 * or in the encoder pool are timed where they really run.
 */
import { EncoderPool } from '../src/encoder/index.js';
import { indexImages, kernels, Workspace } from '../src/index.js';

const [data, workspace, model, flow] = process.argv.slice(2);
if (!data || !workspace || !model) {
  process.stderr.write('usage: index-child <data dir> <workspace> <model dir> [flow file]\n');
  process.exit(2);
}

/** Wall time during which at least one batch was in the encoder pool (queued or running). */
let encodeBusyMs = 0;
let batchesInFlight = 0;
let busySince = 0;
/** The pool settings the flow really used (its YAML may override the encoder's defaults). */
let encoder: { replicas: number; intraOpThreads: number; batchSize: number } | undefined;

/** Count the time a call of `method` (a batch, or region pooling's image pass) is in the pool as encoder time. */
function timeEncoderCalls(method: 'encode' | 'encodeRegions'): void {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be called with the pool as `this` (original.apply below)
  const original = EncoderPool.prototype[method] as (this: EncoderPool, ...args: unknown[]) => Promise<Float32Array>;
  (EncoderPool.prototype as unknown as Record<string, unknown>)[method] = async function (this: EncoderPool, ...args: unknown[]) {
    encoder ??= { replicas: this.replicas, intraOpThreads: this.intraOpThreads, batchSize: this.batchSize };
    if (batchesInFlight++ === 0) busySince = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      if (--batchesInFlight === 0) encodeBusyMs += performance.now() - busySince;
    }
  };
}
timeEncoderCalls('encode');
timeEncoderCalls('encodeRegions');

/** Synchronous main-thread work: crop + layout + normalize of every chunk. */
let extractMs = 0;
const extractChunks = kernels.extractChunks.bind(kernels);
(kernels as { extractChunks: typeof extractChunks }).extractChunks = (...args) => {
  const start = performance.now();
  try {
    extractChunks(...args);
  } finally {
    extractMs += performance.now() - start;
  }
};

/** Store commits (SQLite transaction + matrix append) and the final close (manifest, rebuild swap). */
let writeMs = 0;
for (const method of ['addDocs', 'close'] as const) {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be called with the workspace as `this` (original.apply below)
  const original = Workspace.prototype[method] as (...args: unknown[]) => unknown;
  (Workspace.prototype as unknown as Record<string, unknown>)[method] = function (this: Workspace, ...args: unknown[]) {
    const start = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      writeMs += performance.now() - start;
    }
  };
}

const start = performance.now();
const summary = await indexImages({ data, workspace, model, rebuild: true, ...(flow && { flow }) });
const wallMs = performance.now() - start;
const usage = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({ summary, wallMs, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssBytes: usage.maxRSS * 1024, hooks: { encodeBusyMs, extractMs, writeMs }, encoder })}\n`,
);
