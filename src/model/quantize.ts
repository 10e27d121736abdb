/**
 * `quantize`: a static int8 QDQ copy of a float model, calibrated on a folder of images cut into
 * chunks the way the flows cut them, written as a model folder of its own (model.onnx +
 * model.json with `precision: "int8"` and the float model's sha256 as its source).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { findImages } from '../dataset/index.js';
import { decodeImage, resizeExact } from '../image/index.js';
import { kernels, slidingWindows } from '../kernels/index.js';
import { writeFileAtomic } from '../util/files.js';
import { calibrate, type CalibrationMethod } from './calibrate.js';
import { loadModel, type LoadedModel } from './index.js';
import { quantizeGraph } from './qdq.js';

export { CALIBRATION_METHODS, type CalibrationMethod } from './calibrate.js';

/**
 * Measured on the fixture (README "Encoder settings"): min/max over 4, 16 or 64 images gave the
 * same agreement with the float model (mean cosine 0.992), as did the 99.99th percentile; entropy
 * (KL) clipped ReLU6 outputs too hard (0.975). 32 images spread over the folder cover its variety
 * for about 20 s of calibration.
 */
export const DEFAULT_CALIBRATION_IMAGES = 32;
export const DEFAULT_CALIBRATION_METHOD: CalibrationMethod = 'minmax';

export interface QuantizeOptions {
  readonly modelDir: string;
  /** Folder of calibration images (searched recursively). */
  readonly calibrationDir: string;
  /** Output model folder (default: `<modelDir>-int8` beside the float model). */
  readonly outDir?: string;
  /** Calibration images, taken evenly spread over the folder's sorted list. */
  readonly images?: number;
  readonly method?: CalibrationMethod;
  /** For the percentile method: percent of the values kept inside the range. */
  readonly percentile?: number;
  readonly onProgress?: (stage: 'decode' | 'calibrate', done: number, total: number) => void;
}

export interface QuantizeResult {
  readonly outDir: string;
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
  /** sha256 of the float model it was made from. */
  readonly source: string;
  readonly images: number;
  readonly chunks: number;
  readonly quantizedNodes: number;
  readonly foldedClips: number;
}

export async function quantizeModel(opts: QuantizeOptions): Promise<QuantizeResult> {
  const model = await loadModel(opts.modelDir);
  if (model.precision !== 'fp32') throw new Error(`${model.file}: already ${model.precision}; quantize the float model it came from`);
  const method = opts.method ?? DEFAULT_CALIBRATION_METHOD;
  const files = pickEvenly(await findImages(path.resolve(opts.calibrationDir)), opts.images ?? DEFAULT_CALIBRATION_IMAGES);
  if (files.length === 0) throw new Error(`${opts.calibrationDir}: no images to calibrate with`);

  const chunks = await calibrationChunks(model, files, (done) => opts.onProgress?.('decode', done, files.length));
  const { width, height } = model.input;
  const ranges = await calibrate(model.bytes, chunks, { width, height }, { method, percentile: opts.percentile, onProgress: (done, total) => opts.onProgress?.('calibrate', done, total) });
  const quantized = quantizeGraph(model.bytes, ranges);

  const outDir = path.resolve(opts.outDir ?? `${path.resolve(opts.modelDir)}-int8`);
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, 'model.onnx');
  const sha256 = createHash('sha256').update(quantized.bytes).digest('hex');
  const chunkCount = chunks.length / (3 * width * height);
  writeFileAtomic(file, quantized.bytes);
  const calibration = { method, ...(method === 'percentile' ? { percentile: opts.percentile ?? 99.999 } : {}), images: files.length, chunks: chunkCount };
  const json = await quantizedManifest(model, { sha256, bytes: quantized.bytes.byteLength, calibration, quantizedNodes: quantized.quantizedNodes, foldedClips: quantized.foldedClips });
  writeFileAtomic(path.join(outDir, 'model.json'), `${JSON.stringify(json, null, 2)}\n`);
  return {
    outDir,
    file,
    sha256,
    bytes: quantized.bytes.byteLength,
    source: model.sha256,
    images: files.length,
    chunks: chunkCount,
    quantizedNodes: quantized.quantizedNodes,
    foldedClips: quantized.foldedClips,
  };
}

/**
 * The int8 copy of the float model in `opts.outDir`: reused when its model.json names this float
 * model as its source and its file checks out, quantized afresh otherwise (missing, damaged, or
 * made from another model). What a flow asking for int8 needs, with a folder of its own per model.
 */
export async function quantizedCopy(opts: QuantizeOptions & { readonly outDir: string }): Promise<LoadedModel> {
  const float = await loadModel(opts.modelDir);
  const existing = await loadModel(opts.outDir).catch(() => undefined);
  if (existing?.precision === 'int8' && existing.quantizedFrom === float.sha256) return existing;
  await quantizeModel(opts);
  return loadModel(opts.outDir);
}

/** `count` files spread evenly over the list (all of them when it is shorter), so every part of a sorted, class-ordered folder is seen. */
function pickEvenly(files: string[], count: number): string[] {
  if (files.length <= count) return files;
  return Array.from({ length: count }, (_, i) => files[Math.floor(((i + 0.5) * files.length) / count)]);
}

/**
 * Every image's chunks as the default flows cut them: shorter side at 8/7 of the model input
 * (256 for 224), sliding windows at half the input's stride, plus the whole image squashed to the input.
 */
async function calibrationChunks(model: LoadedModel, files: string[], onDecoded: (done: number) => void): Promise<Float32Array> {
  const { width, height, norm } = model.input;
  const size = 3 * width * height;
  const parts: Float32Array[] = [];
  for (const [i, file] of files.entries()) {
    const image = await decodeImage(file, { shorterSide: Math.round((Math.max(width, height) * 8) / 7) });
    const boxes = slidingWindows(image.width, image.height, width, Math.floor(width / 2));
    const whole = await resizeExact(image, width, height);
    const out = new Float32Array((boxes.length + 1) * size);
    kernels.extractChunks(image, boxes, norm, out, 0);
    kernels.extractChunks(whole, [{ x: 0, y: 0, width, height }], norm, out, boxes.length);
    parts.push(out);
    onDecoded(i + 1);
  }
  const all = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** The float model's model.json (or one made from its manifest) with the int8 file's identity and provenance. */
async function quantizedManifest(model: LoadedModel, q: { sha256: string; bytes: number; calibration: object; quantizedNodes: number; foldedClips: number }): Promise<Record<string, unknown>> {
  let base: Record<string, unknown>;
  try {
    base = JSON.parse(await readFile(path.join(path.dirname(model.file), 'model.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    const { input, embedding } = model;
    base = { name: model.name, input: { name: input.name, layout: input.layout, width: input.width, height: input.height, mean: input.norm.mean, std: input.norm.std } };
    if (embedding.synthesized) base.outputs = { embedding: { name: embedding.name, dim: embedding.dim } };
  }
  // A synthesized embedding is in the quantized graph itself: declare it, so loadModel does not look for the classifier again.
  const outputs = {
    ...(base.outputs as object | undefined),
    embedding: { ...((base.outputs as { embedding?: object } | undefined)?.embedding ?? {}), name: model.embedding.name, dim: model.embedding.dim },
  };
  return {
    ...base,
    name: `${model.name}-int8`,
    description: `static int8 QDQ quantization of ${model.name}`,
    file: 'model.onnx',
    sha256: q.sha256,
    bytes: q.bytes,
    precision: 'int8',
    source: { name: model.name, file: path.basename(model.file), sha256: model.sha256 },
    quantization: {
      format: 'QDQ',
      activations: 'uint8, asymmetric, per tensor',
      weights: 'int8, symmetric, per output channel (Conv)',
      bias: 'int32 at input scale x weight scale',
      calibration: q.calibration,
      quantizedNodes: q.quantizedNodes,
      foldedClips: q.foldedClips,
    },
    outputs,
  };
}
