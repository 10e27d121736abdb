/**
 * The encoder: a Piscina pool of worker threads, each with its own onnxruntime session, turning
 * batches of normalized NCHW chunks into L2-normalized embeddings. Batches travel zero-copy
 * (transferred, not cloned) both ways; callers may keep several batches in flight and the pool
 * queues them.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';
import * as ort from 'onnxruntime-node';
import type { Box } from '../kernels/types.js';
import type { LoadedModel } from '../model/index.js';
import { sessionOptions, type WorkerConfig } from './session.js';
import type { EncodeTask } from './worker.js';

export interface EncoderSettings {
  /** Worker threads, one session each. */
  readonly replicas: number;
  /** Threads in each session's intra-op pool. */
  readonly intraOpThreads: number;
  /** Chunks per batch the callers should form (the pool accepts any count). */
  readonly batchSize: number;
}

/**
 * Chosen by measurement (bench/encoder.ts, README "Encoder settings"): CPU time per chunk is flat
 * from batch 8 to 64 and ~5-10 % higher at batch 1; 16 is the smallest batch on that plateau, so
 * latency, memory and the tail of a stream stay small.
 */
export const DEFAULT_BATCH_SIZE = 16;

/** More single-threaded sessions than this cost memory (one model copy and arena each) for little gain; measured on 2 cores only. */
const MAX_DEFAULT_REPLICAS = 4;

/**
 * onnxruntime 1.30's telemetry (on unless ORT_DISABLE_TELEMETRY is set) parses /proc/self/cmdline
 * recursively on the thread that creates the first session: a worker thread's stack, so a command
 * line of a few hundred image paths overflowed it (SIGSEGV). Set before any worker starts, in the
 * process environment the native library reads; a user's own setting is kept.
 */
function disableOnnxruntimeTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
}

/**
 * Defaults that fill the cores without oversubscribing them: replicas × intraOpThreads ≤ cores.
 * Without options: one single-threaded session per core (up to 4), which measured ~8 % less CPU per
 * chunk than one session with 2 intra-op threads (no per-operator thread handoff). Given
 * `replicas`, each worker gets an equal share of the cores (at least 1). A latency-bound caller
 * (one query at a time) should ask for replicas: 1, which gives its single batch every core.
 */
export function defaultEncoderSettings(opts: Partial<EncoderSettings> = {}, cores = os.availableParallelism()): EncoderSettings {
  const replicas = opts.replicas ?? Math.min(cores, MAX_DEFAULT_REPLICAS);
  const intraOpThreads = opts.intraOpThreads ?? Math.max(1, Math.floor(cores / replicas));
  return { replicas, intraOpThreads, batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE };
}

export interface EncoderOpenOptions extends Partial<EncoderSettings> {
  readonly model: LoadedModel;
  /** Region pooling (encodeRegions): the model is a shape-dynamic copy (model/dynamic.ts) with this feature-map output, `stride` pixels per cell. */
  readonly features?: { readonly name: string; readonly stride: number };
  /** Let onnxruntime's pool threads busy-wait between runs (default false; for comparisons). */
  readonly allowSpinning?: boolean;
}

export class EncoderPool implements EncoderSettings {
  readonly replicas: number;
  readonly intraOpThreads: number;
  readonly batchSize: number;
  readonly dim: number;
  /** Floats per chunk: 3 × height × width. */
  readonly chunkSize: number;
  /** Image pixels per feature-map cell, when the pool can pool regions. */
  readonly stride: number | undefined;
  #pool: Piscina<EncodeTask, Float32Array>;
  #closed = false;
  /** First error a worker raised outside a task; the pool is unusable after it. */
  #failure: Error | undefined;
  /** Batches sent and not yet settled: close() waits for them (see close()). */
  #inFlight = new Set<Promise<void>>();

  private constructor(pool: Piscina<EncodeTask, Float32Array>, settings: EncoderSettings, dim: number, chunkSize: number, stride?: number) {
    this.#pool = pool;
    this.stride = stride;
    this.replicas = settings.replicas;
    this.intraOpThreads = settings.intraOpThreads;
    this.batchSize = settings.batchSize;
    this.dim = dim;
    this.chunkSize = chunkSize;
  }

  /** Start the workers and run one chunk through each, so a broken model fails here, not mid-run. */
  static async open(opts: EncoderOpenOptions): Promise<EncoderPool> {
    const settings = defaultEncoderSettings(opts);
    for (const [key, value] of Object.entries(settings)) {
      if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`encoder ${key} must be a positive integer, got ${value}`);
    }
    disableOnnxruntimeTelemetry();
    const { model } = opts;
    const shared = new SharedArrayBuffer(model.bytes.byteLength);
    new Uint8Array(shared).set(model.bytes);
    const workerData: WorkerConfig = {
      model: shared,
      modelLength: model.bytes.byteLength,
      inputName: model.input.name,
      outputName: model.embedding.name,
      width: model.input.width,
      height: model.input.height,
      dim: model.embedding.dim,
      ...(opts.features && { featuresName: opts.features.name }),
      intraOpThreads: settings.intraOpThreads,
      allowSpinning: opts.allowSpinning ?? false,
      settled: new SharedArrayBuffer(4),
    };
    const pool = new Piscina<EncodeTask, Float32Array>({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: settings.replicas,
      maxThreads: settings.replicas,
      idleTimeout: Infinity,
      // A worker runs one batch at a time: session.run blocks its thread anyway.
      concurrentTasksPerWorker: 1,
      workerData,
    });
    const encoder = new EncoderPool(pool, settings, model.embedding.dim, 3 * model.input.width * model.input.height, opts.features?.stride);
    // Workers report session errors through tasks; 'error' here means a worker thread itself died.
    // Unhandled, it would crash the process, and the tasks waiting for that worker would never settle.
    pool.on('error', (err: Error) => {
      encoder.#failure ??= err;
    });
    try {
      await allWorkersSettled(workerData.settled, settings.replicas, () => encoder.#failure);
      await Promise.all(Array.from({ length: settings.replicas }, () => encoder.encode(new Float32Array(encoder.chunkSize), 1)));
    } catch (err) {
      await encoder.close();
      throw new Error(`${model.file}: the encoder could not run the model: ${(err as Error).message}`);
    }
    return encoder;
  }

  /**
   * Encode `count` chunks (batch = count × 3 × H × W floats, NCHW, normalized). The batch's buffer is
   * transferred to the worker, so it is detached (length 0) in the caller afterwards.
   */
  async encode(batch: Float32Array, count: number): Promise<Float32Array> {
    if (this.#closed) throw new Error('the encoder pool is closed');
    if (this.#failure) throw new Error(`an encoder worker failed: ${this.#failure.message}`);
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`count must be a positive integer, got ${count}`);
    if (batch.length !== count * this.chunkSize) throw new RangeError(`batch has ${batch.length} floats, expected ${count} × ${this.chunkSize}`);
    return this.#run({ batch, count }, batch);
  }

  /**
   * Region pooling: one pass over each of `count` whole images of `height` × `width` (batch = count
   * × 3 × height × width floats, NCHW, normalized; transferred), then GeM (p = `gemP`) pooling of
   * the feature map's cells under each of `regions[i]` (windows in that image's pixels). Returns one
   * L2-normalized row per window, image after image.
   */
  async encodeRegions(batch: Float32Array, count: number, height: number, width: number, regions: readonly (readonly Box[])[], gemP = 3): Promise<Float32Array> {
    if (this.#closed) throw new Error('the encoder pool is closed');
    if (this.#failure) throw new Error(`an encoder worker failed: ${this.#failure.message}`);
    if (this.stride === undefined) throw new Error('this encoder pool was opened without a feature-map output: region pooling needs one');
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`count must be a positive integer, got ${count}`);
    if (batch.length !== count * 3 * height * width) throw new RangeError(`batch has ${batch.length} floats, expected ${count} × 3 × ${height} × ${width}`);
    if (regions.length !== count) throw new RangeError(`${regions.length} region lists for ${count} images`);
    return this.#run({ batch, count, height, width, regions, stride: this.stride, gemP }, batch);
  }

  #run(task: EncodeTask, batch: Float32Array): Promise<Float32Array> {
    const run = this.#pool.run(task, { transferList: [batch.buffer as ArrayBuffer] });
    const forget = (): void => void this.#inFlight.delete(settled);
    const settled: Promise<void> = run.then(forget, forget);
    this.#inFlight.add(settled);
    return run;
  }

  /** Batches waiting for a free worker. */
  get queued(): number {
    return this.#pool.queueSize;
  }

  /**
   * Wait for the batches in flight, then stop the workers. Terminating a worker thread while it is
   * inside onnxruntime (session.run or session creation) aborts the whole process ("terminate
   * called after throwing an instance of 'Napi::Error'", exit 134), and so does process.exit()
   * during a run: always await close() before exiting.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#inFlight);
    // After a worker died, close() could wait forever for tasks queued to it: destroy rejects them.
    if (this.#failure) await this.#pool.destroy();
    else await this.#pool.close();
  }
}

/**
 * Wait until every worker is out of session creation (created or failed): terminating a thread
 * inside onnxruntime's session constructor can abort the process, so open() never closes before.
 */
async function allWorkersSettled(settled: SharedArrayBuffer, workers: number, died: () => Error | undefined): Promise<void> {
  const counter = new Int32Array(settled);
  while (Atomics.load(counter, 0) < workers) {
    const err = died();
    if (err) throw err;
    await sleep(5);
  }
}

/** For `doctor`: onnxruntime version and the thread settings the encoder uses. */
export function encoderInfo(settings: EncoderSettings = defaultEncoderSettings()): {
  onnxruntime: string;
  cores: number;
  settings: EncoderSettings;
  session: ReturnType<typeof sessionOptions>;
} {
  return { onnxruntime: ort.env.versions.node ?? ort.env.versions.common, cores: os.availableParallelism(), settings, session: sessionOptions(settings.intraOpThreads) };
}
