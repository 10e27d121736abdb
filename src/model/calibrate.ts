/**
 * Calibration for static quantization: run sample inputs through the float model with its
 * intermediate activations exposed as outputs, and reduce each activation to the range its
 * quantization should cover (min/max, a percentile of the values, or the KL-divergence threshold).
 */
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.NodeProto;

export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export interface TensorRange {
  readonly min: number;
  readonly max: number;
}

/** Ops whose outputs the quantizer may put a QuantizeLinear on, so the ones calibration measures. */
const MEASURED_OPS = new Set(['Conv', 'Clip', 'Relu', 'Add']);

/** Histogram bins over each tensor's min..max (the percentile and entropy methods). */
const HISTOGRAM_BINS = 2048;

/** The tensors calibration measures: the data input and every output of the ops above. */
export function activationNames(bytes: Uint8Array): { input: string; activations: string[] } {
  const graph = onnx.ModelProto.decode(bytes).graph as Graph;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const input = graph.input.find((i) => !initializers.has(i.name))?.name;
  if (!input) throw new Error('the ONNX graph has no input');
  const activations = (graph.node as Node[]).filter((n) => MEASURED_OPS.has(n.opType)).flatMap((n) => n.output);
  return { input, activations };
}

/** The model with `names` added as float outputs (their shapes left to onnxruntime). */
function exposeOutputs(bytes: Uint8Array, names: readonly string[]): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as Graph;
  const present = new Set(graph.output.map((o) => o.name));
  for (const name of names) {
    if (!present.has(name)) graph.output.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }));
  }
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Per-tensor statistics over every calibration batch. Min/max need one pass; the histogram methods
 * need a second pass over the same batches, binned over the first pass's min..max.
 */
class TensorStats {
  min = Infinity;
  max = -Infinity;
  histogram?: Float64Array;

  observeRange(values: Float32Array): void {
    let { min, max } = this;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    this.min = min;
    this.max = max;
  }

  observeHistogram(values: Float32Array): void {
    const bins = (this.histogram ??= new Float64Array(HISTOGRAM_BINS));
    const width = (this.max - this.min) / HISTOGRAM_BINS;
    if (!(width > 0)) return;
    const last = HISTOGRAM_BINS - 1;
    for (let i = 0; i < values.length; i++) {
      const bin = Math.floor((values[i] - this.min) / width);
      bins[bin > last ? last : bin < 0 ? 0 : bin]++;
    }
  }

  range(method: CalibrationMethod, percentile: number): TensorRange {
    if (method === 'minmax' || !this.histogram || !(this.max > this.min)) return { min: this.min, max: this.max };
    const width = (this.max - this.min) / HISTOGRAM_BINS;
    const edge = (bin: number) => this.min + bin * width;
    if (method === 'percentile') {
      const [low, high] = percentileBins(this.histogram, percentile);
      // A non-negative tensor (ReLU, Clip) keeps its 0: the zero point stays exact.
      return { min: this.min >= 0 ? this.min : edge(low), max: edge(high + 1) };
    }
    // Entropy: the threshold is chosen on |x|, as quantization error is symmetric around zero's bin.
    const zeroBin = Math.min(HISTOGRAM_BINS - 1, Math.max(0, Math.floor(-this.min / width)));
    const magnitudes = foldAroundZero(this.histogram, zeroBin);
    // Zeros (most of a ReLU's output) quantize exactly whatever the range: left in, they swamp the divergence.
    magnitudes[0] = 0;
    const threshold = (klThresholdBin(magnitudes) + 1) * width;
    return { min: Math.max(this.min, -threshold), max: Math.min(this.max, threshold) };
  }
}

/** First and last bins that keep `percentile` % of the values inside (each tail gets half the rest). */
function percentileBins(histogram: Float64Array, percentile: number): [number, number] {
  const total = histogram.reduce((a, b) => a + b, 0);
  const tail = (total * (100 - percentile)) / 200;
  let low = 0;
  for (let seen = 0; low < histogram.length - 1 && seen + histogram[low] <= tail; low++) seen += histogram[low];
  let high = histogram.length - 1;
  for (let seen = 0; high > low && seen + histogram[high] <= tail; high--) seen += histogram[high];
  return [low, high];
}

/** Counts by distance from the zero bin: magnitudes[d] = bins zero+d and zero−d. */
function foldAroundZero(histogram: Float64Array, zeroBin: number): Float64Array {
  const span = Math.max(zeroBin + 1, histogram.length - zeroBin);
  const out = new Float64Array(span);
  for (let bin = 0; bin < histogram.length; bin++) out[Math.abs(bin - zeroBin)] += histogram[bin];
  return out;
}

/**
 * The clipping bin (inclusive) that minimizes the KL divergence between the magnitude histogram
 * clipped there (outliers added to the last bin) and its 128-level quantization (TensorRT's
 * calibration): 128 levels because an activation's 8 bits cover both signs around its zero point.
 */
function klThresholdBin(magnitudes: Float64Array): number {
  const levels = 128;
  if (magnitudes.length <= levels) return magnitudes.length - 1;
  let best = magnitudes.length - 1;
  let bestDivergence = Infinity;
  const suffix = new Float64Array(magnitudes.length + 1);
  for (let i = magnitudes.length - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + magnitudes[i];
  for (let end = levels; end <= magnitudes.length; end += 8) {
    const reference = magnitudes.slice(0, end);
    reference[end - 1] += suffix[end];
    const expanded = new Float64Array(end);
    for (let level = 0; level < levels; level++) {
      const from = Math.floor((level * end) / levels);
      const to = Math.floor(((level + 1) * end) / levels);
      let sum = 0;
      let nonZero = 0;
      for (let i = from; i < to; i++) {
        sum += magnitudes[i];
        if (magnitudes[i] > 0) nonZero++;
      }
      for (let i = from; i < to; i++) if (magnitudes[i] > 0) expanded[i] = sum / nonZero;
    }
    const divergence = klDivergence(reference, expanded);
    if (divergence < bestDivergence) {
      bestDivergence = divergence;
      best = end - 1;
    }
  }
  return best;
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  const pSum = p.reduce((a, b) => a + b, 0);
  const qSum = q.reduce((a, b) => a + b, 0);
  if (pSum === 0 || qSum === 0) return Infinity;
  let divergence = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    // A bin the quantized histogram leaves empty gets a tiny mass rather than an infinite penalty.
    const pi = p[i] / pSum;
    const qi = Math.max(q[i] / qSum, 1e-12);
    divergence += pi * Math.log(pi / qi);
  }
  return divergence;
}

export interface CalibrationOptions {
  readonly method: CalibrationMethod;
  /** Percent of the values the percentile method keeps inside the range (default 99.999). */
  readonly percentile?: number;
  /** Chunks per session run. */
  readonly batchSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Ranges of the input and every measured activation of `bytes` over `chunks` (count × 3 × h × w
 * floats, normalized as the model expects). The session uses every core: calibration is a one-off.
 */
export async function calibrate(bytes: Uint8Array, chunks: Float32Array, shape: { width: number; height: number }, opts: CalibrationOptions): Promise<Map<string, TensorRange>> {
  const { input, activations } = activationNames(bytes);
  const session = await ort.InferenceSession.create(exposeOutputs(bytes, activations), { graphOptimizationLevel: 'disabled', executionMode: 'sequential' });
  const chunkSize = 3 * shape.width * shape.height;
  const count = chunks.length / chunkSize;
  const batchSize = opts.batchSize ?? 4;
  const stats = new Map<string, TensorStats>([input, ...activations].map((name) => [name, new TensorStats()]));
  const passes = opts.method === 'minmax' ? 1 : 2;
  try {
    for (let pass = 0; pass < passes; pass++) {
      for (let first = 0; first < count; first += batchSize) {
        const n = Math.min(batchSize, count - first);
        const batch = chunks.subarray(first * chunkSize, (first + n) * chunkSize);
        const result = await session.run({ [input]: new ort.Tensor('float32', batch, [n, 3, shape.height, shape.width]) }, activations);
        const observe = (name: string, values: Float32Array) => (pass === 0 ? stats.get(name)!.observeRange(values) : stats.get(name)!.observeHistogram(values));
        observe(input, batch);
        for (const name of activations) observe(name, result[name].data as Float32Array);
        opts.onProgress?.(pass * count + first + n, passes * count);
      }
    }
  } finally {
    await session.release();
  }
  const percentile = opts.percentile ?? 99.999;
  return new Map([...stats].map(([name, s]) => [name, s.range(opts.method, percentile)]));
}
