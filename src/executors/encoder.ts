/**
 * encoder: packs the chunks of many documents into batch tensors (cut and normalized by
 * kernels.extractChunks straight into the batch) and encodes them in the worker pool.
 * A full batch goes out at once; a partial one only when a worker would otherwise sit idle,
 * so the pool stays busy with big batches while documents keep arriving, and nothing waits
 * at the end of a stream.
 *
 * With `pooling: regions` the windows of an image are not cut and encoded one by one: the whole
 * normalized image goes through a shape-dynamic copy of the model once (model/dynamic.ts), and each
 * window's vector is the GeM pooling of the last feature map's cells under it (kernels/region-pool.ts).
 * The whole-image chunk is still encoded on its own, in the batches above. The vectors land in the
 * same rows (window chunks, then the whole chunk), so the store and the rankers see the same layout.
 */
import { DEFAULT_BATCH_SIZE, EncoderPool } from '../encoder/index.js';
import { kernels, type Box, type Normalization, type RawImage } from '../kernels/index.js';
import { dynamicShapeModel } from '../model/dynamic.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowDoc } from './types.js';

/** Rows of one batch that belong to one document. */
interface Slice {
  readonly target: Pending;
  readonly batchRow: number;
  readonly docRow: number;
  readonly count: number;
}

interface Pending {
  readonly vectors: Float32Array;
  remaining: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class Encoder implements Executor {
  static readonly params = {
    batch_size: { default: DEFAULT_BATCH_SIZE, int: true, min: 1, max: 1024 },
    /** onnxruntime intra-op threads per replica; 0 = cores / replicas (the encoder's default). */
    intra_op_threads: { default: 0, int: true, min: 0 },
    /** crops: one encoder pass per window; regions: one pass per image, windows GeM-pooled from its feature map. */
    pooling: { default: 'crops', values: ['crops', 'regions'] },
    /** GeM exponent for `pooling: regions` (1 = average pooling). */
    gem_p: { default: 3, min: 1, max: 16 },
  };
  static readonly supportsReplicas = true;

  private pool?: EncoderPool;
  private norm!: Normalization;
  private batch?: Float32Array;
  private filled = 0;
  private slices: Slice[] = [];
  private inFlight = 0;
  private replicas = 1;
  private flushScheduled = false;

  constructor(private readonly opts: { batch_size: number; intra_op_threads: number; pooling: 'crops' | 'regions'; gem_p: number }) {}

  async open(ctx: ExecutorContext): Promise<void> {
    const services = builtinServices(ctx.services, ctx.pod);
    const { model } = services;
    this.replicas = services.encoder?.replicas ?? ctx.replicas;
    const batchSize = services.encoder?.batchSize ?? this.opts.batch_size;
    this.norm = model.input.norm;
    const common = { replicas: this.replicas, intraOpThreads: this.opts.intra_op_threads || undefined, batchSize };
    if (this.opts.pooling === 'regions') {
      let dynamic: ReturnType<typeof dynamicShapeModel>;
      try {
        dynamic = dynamicShapeModel(model.bytes, model.embedding.name);
      } catch (err) {
        throw new Error(`pod '${ctx.pod}': pooling: regions needs a model whose embedding is a global average pool: ${model.file}: ${(err as Error).message}`);
      }
      this.pool = await EncoderPool.open({ ...common, model: { ...model, bytes: dynamic.bytes }, features: { name: dynamic.features, stride: dynamic.stride } });
    } else {
      this.pool = await EncoderPool.open({ ...common, model });
    }
  }

  process(doc: FlowDoc): Promise<void> {
    const chunks = doc.chunks;
    if (!chunks) throw new Error(`encoder: ${doc.uri} has no chunks (put a chunker before the encoder)`);
    const pool = this.pool!;
    const vectors = new Float32Array(chunks.length * pool.dim);
    if (chunks.length === 0) {
      doc.vectors = vectors;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const target: Pending = {
        vectors,
        remaining: chunks.length,
        resolve: () => {
          doc.vectors = vectors;
          resolve();
        },
        reject,
      };
      // Consecutive chunks cut from the same image go to extractChunks together.
      let start = 0;
      if (this.opts.pooling === 'regions') {
        let end = 0;
        while (end < chunks.length && chunks[end].kind === 'window' && chunks[end].image === chunks[0].image) end++;
        if (end > 0)
          this.encodeRegions(
            chunks[0].image,
            chunks.slice(0, end).map((chunk) => chunk.box),
            target,
          );
        start = end;
      }
      while (start < chunks.length) {
        let end = start + 1;
        while (end < chunks.length && chunks[end].image === chunks[start].image) end++;
        this.enqueue(
          chunks[start].image,
          chunks.slice(start, end).map((chunk) => chunk.box),
          target,
          start,
        );
        start = end;
      }
      this.scheduleIdleFlush();
    });
  }

  private enqueue(image: RawImage, boxes: Box[], target: Pending, docRow: number): void {
    const pool = this.pool!;
    let done = 0;
    while (done < boxes.length) {
      this.batch ??= new Float32Array(pool.batchSize * pool.chunkSize);
      const count = Math.min(boxes.length - done, pool.batchSize - this.filled);
      kernels.extractChunks(image, boxes.slice(done, done + count), this.norm, this.batch, this.filled);
      this.slices.push({ target, batchRow: this.filled, docRow: docRow + done, count });
      this.filled += count;
      done += count;
      if (this.filled === pool.batchSize) this.flush();
    }
  }

  /** The windows (rows 0 … boxes.length − 1 of the doc) from one pass over their image. */
  private encodeRegions(image: RawImage, boxes: Box[], target: Pending): void {
    const pool = this.pool!;
    const { width, height } = image;
    const tensor = new Float32Array(3 * width * height);
    kernels.extractChunks(image, [{ x: 0, y: 0, width, height }], this.norm, tensor, 0);
    this.inFlight++;
    pool
      .encodeRegions(tensor, 1, height, width, [boxes], this.opts.gem_p)
      .then(
        (out) => {
          target.vectors.set(out, 0);
          target.remaining -= boxes.length;
          if (target.remaining === 0) target.resolve();
        },
        (err: unknown) => target.reject(err),
      )
      .finally(() => {
        this.inFlight--;
        if (this.filled > 0) this.scheduleIdleFlush();
      });
  }

  /** After the current tick (so documents arriving together share a batch), send a partial batch if a worker is idle. */
  private scheduleIdleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.filled > 0 && this.inFlight < this.replicas) this.flush();
    });
  }

  private flush(): void {
    const pool = this.pool!;
    const batch = this.batch!;
    const count = this.filled;
    const slices = this.slices;
    this.batch = undefined;
    this.filled = 0;
    this.slices = [];
    this.inFlight++;
    pool
      .encode(batch.subarray(0, count * pool.chunkSize), count)
      .then(
        (out) => {
          const dim = pool.dim;
          for (const slice of slices) {
            slice.target.vectors.set(out.subarray(slice.batchRow * dim, (slice.batchRow + slice.count) * dim), slice.docRow * dim);
            slice.target.remaining -= slice.count;
            if (slice.target.remaining === 0) slice.target.resolve();
          }
        },
        (err: unknown) => {
          for (const slice of slices) slice.target.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.filled > 0) this.scheduleIdleFlush();
      });
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
