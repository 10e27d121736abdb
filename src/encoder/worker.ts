/**
 * Piscina worker: one onnxruntime session per worker thread, created once from the shared model
 * bytes. `session.run` is synchronous in onnxruntime-node (it blocks the thread it runs on), which
 * is why it lives here and not on the main thread.
 */
import { move, workerData } from 'piscina';
import * as ort from 'onnxruntime-node';
import { gemPool, regionCells } from '../kernels/region-pool.js';
import type { Box } from '../kernels/types.js';
import { sessionOptions, type WorkerConfig } from './session.js';

const config = workerData as WorkerConfig;

/**
 * A failed session is kept as an error for every task rather than thrown at load: a worker that
 * dies is respawned by Piscina, and terminating a thread while it is inside onnxruntime's session
 * constructor can abort the whole process. `settled` tells the pool this worker is out of that
 * constructor, either way.
 */
let session: ort.InferenceSession | undefined;
let initError: Error | undefined;
try {
  // The binding wants a plain ArrayBuffer, so each worker copies the shared bytes once (then frees them).
  session = await ort.InferenceSession.create(new Uint8Array(config.model, 0, config.modelLength).slice(), sessionOptions(config.intraOpThreads, config.allowSpinning));
} catch (err) {
  initError = err instanceof Error ? err : new Error(String(err));
} finally {
  const settled = new Int32Array(config.settled);
  Atomics.add(settled, 0, 1);
  Atomics.notify(settled, 0);
}

export interface EncodeTask {
  /** count × 3 × height × width, NCHW, normalized (transferred). */
  readonly batch: Float32Array;
  readonly count: number;
  /** Region pooling: the images' size (all alike), instead of the model input's. */
  readonly height?: number;
  readonly width?: number;
  /** Region pooling: per image of the batch, the windows (image pixels) whose cells of the feature map to GeM-pool. */
  readonly regions?: readonly (readonly Box[])[];
  /** Image pixels per feature-map cell. */
  readonly stride?: number;
  readonly gemP?: number;
}

/** Run one batch; returns count × dim L2-normalized rows (with regions: one row per region, in order) (transferred back). */
export default async function encode(task: EncodeTask): Promise<Float32Array> {
  if (!session) throw initError!;
  if (task.regions) return encodeRegions(session, task);
  const { batch, count } = task;
  const { inputName, outputName, width, height, dim } = config;
  const input = new ort.Tensor('float32', batch.subarray(0, count * 3 * height * width), [count, 3, height, width]);
  const result = await session.run({ [inputName]: input }, [outputName]);
  const output = result[outputName];
  if (output.type !== 'float32' || output.data.length !== count * dim) {
    throw new Error(`model output "${outputName}" is ${output.type} ${JSON.stringify(output.dims)}, expected float32 [${count}, ${dim}]`);
  }
  const rows = output.data as Float32Array;
  l2NormalizeRows(rows, dim);
  return move(rows) as Float32Array;
}

async function encodeRegions(session: ort.InferenceSession, { batch, count, height, width, regions, stride, gemP }: EncodeTask): Promise<Float32Array> {
  const { inputName, featuresName, dim } = config;
  if (!featuresName) throw new Error('this encoder has no feature-map output (region pooling needs a shape-dynamic model)');
  if (!height || !width || !stride || regions!.length !== count) throw new Error(`a region batch needs its image size and ${count} region lists`);
  const input = new ort.Tensor('float32', batch.subarray(0, count * 3 * height * width), [count, 3, height, width]);
  const output = (await session.run({ [inputName]: input }, [featuresName]))[featuresName];
  const [n, channels, h, w] = output.dims;
  if (output.type !== 'float32' || n !== count || channels !== dim || output.dims.length !== 4) {
    throw new Error(`model output "${featuresName}" is ${output.type} ${JSON.stringify(output.dims)}, expected float32 [${count}, ${dim}, h, w]`);
  }
  const rows = new Float32Array(regions!.reduce((sum, r) => sum + r.length, 0) * dim);
  let row = 0;
  for (let i = 0; i < count; i++) {
    const cells = regions![i].map((box) => regionCells(box, width, height, w, h, stride));
    gemPool(output.data as Float32Array, i * channels * h * w, channels, h, w, cells, gemP ?? 3, rows, row);
    row += regions![i].length;
  }
  l2NormalizeRows(rows, dim);
  return move(rows) as Float32Array;
}

/** Each row scaled to unit length in place; all-zero rows stay zero. */
function l2NormalizeRows(rows: Float32Array, dim: number): void {
  for (let start = 0; start < rows.length; start += dim) {
    let sum = 0;
    for (let i = start; i < start + dim; i++) sum += rows[i] * rows[i];
    if (sum === 0) continue;
    const scale = 1 / Math.sqrt(sum);
    for (let i = start; i < start + dim; i++) rows[i] *= scale;
  }
}
