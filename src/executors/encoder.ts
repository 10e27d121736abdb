/**
 * encoder: packs the chunks of many documents into batch tensors (cut and normalized by
 * kernels.extractChunks straight into the batch) and encodes them in the worker pool.
 * A full batch goes out at once; a partial one only when a worker would otherwise sit idle,
 * so the pool stays busy with big batches while documents keep arriving, and nothing waits
 * at the end of a stream.
 *
 * A whole-image chunk is squashed to the model input here (sharp, off the main thread), then
 * batched like the windows.
 *
 * With `pooling: regions` the windows of an image are not cut and encoded one by one: the whole
 * normalized image goes through a shape-dynamic copy of the model once (model/dynamic.ts), and each
 * window's vector is the GeM pooling of the last feature map's cells under it (kernels/region-pool.ts).
 * The whole-image chunk is encoded on its own (`whole_chunk: encoded`), or GeM-pooled from all of
 * that map (`whole_chunk: pooled`: one pass per image, nothing squashed). The vectors land in the
 * same rows (window chunks, then the whole chunk), so the store and the rankers see the same layout.
 */
import { DEFAULT_BATCH_SIZE, EncoderPool } from '../encoder/index.js';
import { resizeExact } from '../image/index.js';
import { kernels, type Box, type RawImage } from '../kernels/index.js';
import { dynamicShapeModel } from '../model/dynamic.js';
import type { ModelManifest } from '../model/index.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowChunk, FlowDoc } from './types.js';

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
    /** With `pooling: regions`: encoded = the whole image squashed and encoded on its own; pooled = GeM of the image pass's whole map. */
    whole_chunk: { default: 'encoded', values: ['encoded', 'pooled'] },
  };
  static readonly supportsReplicas = true;

  private pool?: EncoderPool;
  /** The model input: size the whole chunk is squashed to, and the normalization of every chunk. */
  private input!: ModelManifest['input'];
  private batch?: Float32Array;
  private filled = 0;
  private slices: Slice[] = [];
  private inFlight = 0;
  private replicas = 1;
  private flushScheduled = false;

  constructor(private readonly opts: { batch_size: number; intra_op_threads: number; pooling: 'crops' | 'regions'; gem_p: number; whole_chunk: 'encoded' | 'pooled' }) {}

  async open(ctx: ExecutorContext): Promise<void> {
    const services = builtinServices(ctx.services, ctx.pod);
    const { model } = services;
    this.replicas = services.encoder?.replicas ?? ctx.replicas;
    const batchSize = services.encoder?.batchSize ?? this.opts.batch_size;
    this.input = model.input;
    if (this.opts.whole_chunk === 'pooled' && this.opts.pooling !== 'regions')
      throw new Error(`pod '${ctx.pod}': whole_chunk: pooled needs pooling: regions (there is no feature map to pool it from)`);
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
      let start = 0;
      if (this.opts.pooling === 'regions') {
        const pooled = (chunk: FlowChunk) => chunk.image === chunks[0].image && (chunk.kind === 'window' || this.opts.whole_chunk === 'pooled');
        while (start < chunks.length && pooled(chunks[start])) start++;
        if (start > 0)
          this.encodeRegions(
            chunks[0].image,
            chunks.slice(0, start).map((chunk) => chunk.box),
            target,
          );
      }
      // Consecutive windows of the same image go to extractChunks together; a whole chunk is squashed first.
      while (start < chunks.length) {
        const first = chunks[start];
        if (first.kind === 'whole') {
          this.enqueueSquashed(first, target, start++);
          continue;
        }
        let end = start + 1;
        while (end < chunks.length && chunks[end].kind === 'window' && chunks[end].image === first.image) end++;
        this.enqueue(
          first.image,
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
      kernels.extractChunks(image, boxes.slice(done, done + count), this.input.norm, this.batch, this.filled);
      this.slices.push({ target, batchRow: this.filled, docRow: docRow + done, count });
      this.filled += count;
      done += count;
      if (this.filled === pool.batchSize) this.flush();
    }
  }

  /** A whole chunk: its box (all of its image) squashed to the model input, then batched as row `docRow` of the doc. */
  private enqueueSquashed(chunk: FlowChunk, target: Pending, docRow: number): void {
    const { width, height } = this.input;
    const { box, image } = chunk;
    if (box.x !== 0 || box.y !== 0 || box.width !== image.width || box.height !== image.height) {
      target.reject(new Error(`encoder: a whole chunk's box must be all of its ${image.width}x${image.height} image, got ${box.width}x${box.height}+${box.x}+${box.y}`));
      return;
    }
    resizeExact(image, width, height)
      .then((squashed) => {
        this.enqueue(squashed, [{ x: 0, y: 0, width, height }], target, docRow);
        this.scheduleIdleFlush();
      })
      .catch((err: unknown) => target.reject(err));
  }

  /** The chunks (rows 0 … boxes.length − 1 of the doc: windows, and the whole chunk when pooled) from one pass over their image. */
  private encodeRegions(image: RawImage, boxes: Box[], target: Pending): void {
    const pool = this.pool!;
    const { width, height } = image;
    const tensor = new Float32Array(3 * width * height);
    kernels.extractChunks(image, [{ x: 0, y: 0, width, height }], this.input.norm, tensor, 0);
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
