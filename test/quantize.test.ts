import test from 'ava';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { EncoderPool } from '../src/encoder/index.js';
import { decodeImage, resizeExact } from '../src/image/index.js';
import { kernels, slidingWindows } from '../src/kernels/index.js';
import { calibrate } from '../src/model/calibrate.js';
import { loadModel, type LoadedModel } from '../src/model/index.js';
import { quantizeGraph, uint8Params } from '../src/model/qdq.js';
import { quantizedCopy, quantizeModel, type QuantizeResult } from '../src/model/quantize.js';
import { flowerImage, modelDir } from '../bench/fixtures.js';

const { onnx } = onnxProto;
const CHUNK = 3 * 224 * 224;

let dir = '';
let fp32: LoadedModel;
let int8: LoadedModel;
let result: QuantizeResult;
/** Chunks (windows + whole image) of 17 fixture images, one per class, none of them a calibration image. */
let heldOut: Float32Array;

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flower-quantize-'));
  // Calibration on 8 images of a folder of its own: the held-out images below are never among them.
  const calibration = path.join(dir, 'calibration');
  await mkdir(calibration);
  for (let i = 0; i < 8; i++) await writeFile(path.join(calibration, `c${i}.jpg`), await readFile(flowerImage(3 + i * 170)));
  fp32 = await loadModel(modelDir);
  result = await quantizeModel({ modelDir, calibrationDir: calibration, outDir: path.join(dir, 'int8') });
  int8 = await loadModel(result.outDir);
  heldOut = await chunksOf(Array.from({ length: 17 }, (_, c) => 41 + c * 80));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function chunksOf(images: number[]): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const n of images) {
    const image = await decodeImage(flowerImage(n), { shorterSide: 256 });
    const boxes = slidingWindows(image.width, image.height, 224, 112);
    const out = new Float32Array((boxes.length + 1) * CHUNK);
    kernels.extractChunks(image, boxes, fp32.input.norm, out, 0);
    kernels.extractChunks(await resizeExact(image, 224, 224), [{ x: 0, y: 0, width: 224, height: 224 }], fp32.input.norm, out, boxes.length);
    parts.push(out);
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (all.set(p, offset), offset + p.length), 0);
  return all;
}

async function embed(model: LoadedModel, chunks: Float32Array): Promise<Float32Array> {
  const pool = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 1 });
  try {
    const count = chunks.length / CHUNK;
    const out = new Float32Array(count * model.embedding.dim);
    for (let first = 0; first < count; first += 16) {
      const n = Math.min(16, count - first);
      out.set(await pool.encode(chunks.slice(first * CHUNK, (first + n) * CHUNK), n), first * model.embedding.dim);
    }
    return out;
  } finally {
    await pool.close();
  }
}

test('the int8 folder is a model like any other: model.json with precision, source and the new file sha256, read by loadModel', async (t) => {
  const json = JSON.parse(await readFile(path.join(result.outDir, 'model.json'), 'utf8')) as Record<string, unknown>;
  const bytes = await readFile(path.join(result.outDir, 'model.onnx'));
  t.is(json.precision, 'int8');
  t.is(json.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.is(json.bytes, bytes.byteLength);
  t.deepEqual(json.source, { name: fp32.name, file: 'model.onnx', sha256: fp32.sha256 });
  t.is(result.images, 8);
  t.is(int8.precision, 'int8');
  t.is(int8.quantizedFrom, fp32.sha256);
  t.is(int8.sha256, result.sha256);
  t.not(int8.sha256, fp32.sha256);
  t.deepEqual(int8.input, fp32.input);
  t.deepEqual(int8.embedding, fp32.embedding);
  t.is(fp32.precision, 'fp32');
  t.is(fp32.quantizedFrom, undefined);
  t.true(bytes.byteLength < 0.6 * (await readFile(fp32.file)).byteLength, 'int8 weights: about half the file');
});

test('onnxruntime fuses every Conv and Add of the backbone into its integer kernels (QLinearConv, QLinearAdd)', async (t) => {
  const optimized = path.join(dir, 'optimized.onnx');
  const session = await ort.InferenceSession.create(int8.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, optimizedModelFilePath: optimized });
  await session.release();
  const ops = new Map<string, number>();
  for (const node of onnx.ModelProto.decode(await readFile(optimized)).graph!.node!) ops.set(node.opType!, (ops.get(node.opType!) ?? 0) + 1);
  // 53 Convs in the float model: all but the logits head (fed by the float embedding) are quantized.
  t.is(ops.get('QLinearConv'), 52);
  t.is(ops.get('QLinearAdd'), 10);
  t.is(ops.get('Clip'), undefined, 'every ReLU6 folded into its Conv');
  t.is(ops.get('QuantizeLinear'), 1, 'one quantization of the input; the rest stays uint8 until the pooled embedding');
  t.is(result.quantizedNodes, 62);
  t.is(result.foldedClips, 35);
});

test('int8 embeddings agree with fp32 on held-out fixture chunks (measured on AVX-512 VNNI: mean cosine 0.996, min 0.990)', async (t) => {
  const a = await embed(fp32, heldOut);
  const b = await embed(int8, heldOut);
  const dim = fp32.embedding.dim;
  const cosines: number[] = [];
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) dot += a[i] * b[i];
    cosines.push(dot);
  }
  const mean = cosines.reduce((s, c) => s + c, 0) / cosines.length;
  t.log(`${cosines.length} chunks: mean cosine ${mean.toFixed(4)}, min ${Math.min(...cosines).toFixed(4)}`);
  t.true(cosines.length > 100);
  t.true(mean >= 0.99, `mean cosine ${mean}`);
  t.true(Math.min(...cosines) >= 0.975, `min cosine ${Math.min(...cosines)}`);
});

test('quantizedCopy reuses the int8 copy of this float model, and replaces one made from another model', async (t) => {
  const calibrationDir = path.join(dir, 'calibration');
  const before = await stat(result.file);
  const reused = await quantizedCopy({ modelDir, calibrationDir, outDir: result.outDir });
  t.is(reused.sha256, result.sha256);
  t.is((await stat(result.file)).mtimeMs, before.mtimeMs, 'not written again');

  const foreign = path.join(dir, 'foreign');
  await cp(result.outDir, foreign, { recursive: true });
  const json = JSON.parse(await readFile(path.join(foreign, 'model.json'), 'utf8')) as { source: { sha256: string } };
  await writeFile(path.join(foreign, 'model.json'), JSON.stringify({ ...json, source: { ...json.source, sha256: 'ef'.repeat(32) } }));
  t.is((await loadModel(foreign)).quantizedFrom, 'ef'.repeat(32));
  const remade = await quantizedCopy({ modelDir, calibrationDir, outDir: foreign });
  t.is(remade.quantizedFrom, fp32.sha256);
  t.is(remade.sha256, result.sha256, 'the same calibration gives the same bytes');
});

test('an int8 model is not quantized again', async (t) => {
  await t.throwsAsync(quantizeModel({ modelDir: result.outDir, calibrationDir: dir }), { message: /already int8/ });
});

/** A tiny model: input [N,3,4,4] → 1x1 Conv (4 channels) → Clip(low, high) → GlobalAveragePool → Flatten → output. */
function tinyModel(low: number, high: number, opset = 13, weight = (i: number) => ((i * 7) % 5) / 4 - 0.5): Uint8Array {
  const float = (name: string, dims: number[], values: number[]) =>
    onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(Float32Array.from(values).buffer) });
  const weights = Array.from({ length: 12 }, (_, i) => weight(i));
  const node = (opType: string, input: string[], output: string[]) => onnx.NodeProto.create({ opType, input, output });
  const graph = onnx.GraphProto.create({
    name: 'tiny',
    node: [node('Conv', ['x', 'w', 'b'], ['conv']), node('Clip', ['conv', 'low', 'high'], ['clip']), node('GlobalAveragePool', ['clip'], ['pooled']), node('Flatten', ['pooled'], ['y'])],
    initializer: [float('w', [4, 3, 1, 1], weights), float('b', [4], [0.1, -0.2, 0.3, 0]), float('low', [], [low]), float('high', [], [high])],
    input: [
      onnx.ValueInfoProto.create({
        name: 'x',
        type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 4 }, { dimValue: 4 }] } } },
      }),
    ],
    output: [onnx.ValueInfoProto.create({ name: 'y', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } })],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], graph })).finish();
}

const tinyInput = Float32Array.from({ length: 2 * 48 }, (_, i) => Math.sin(i * 1.7) * 2);

test('calibration ranges: min/max are the exact extremes; percentile and entropy lie inside them', async (t) => {
  const model = tinyModel(0, 6);
  const shape = { width: 4, height: 4 };
  const minmax = await calibrate(model, tinyInput, shape, { method: 'minmax' });
  t.deepEqual(minmax.get('x'), { min: Math.min(...tinyInput), max: Math.max(...tinyInput) });
  t.true(minmax.get('clip')!.min >= 0 && minmax.get('clip')!.max <= 6);
  for (const method of ['percentile', 'entropy'] as const) {
    const ranges = await calibrate(model, tinyInput, shape, { method, percentile: 99 });
    for (const [name, range] of ranges) {
      t.true(range.min >= minmax.get(name)!.min - 1e-6 && range.max <= minmax.get(name)!.max + 1e-6, `${method} ${name}`);
    }
  }
});

test('a Clip is folded only when the uint8 range of its output already clips as it does, and the result runs close to fp32', async (t) => {
  const shape = { width: 4, height: 4 };
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      return (await session.run({ x: new ort.Tensor('float32', tinyInput, [2, 3, 4, 4]) }, ['y'])).y.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  for (const [low, high, folds] of [
    [0, 6, true],
    // Calibrated to about ±1: the uint8 grid reaches just past −1 (zero point 128), so that Clip still has work to do.
    [-1, 1, false],
  ] as const) {
    const model = tinyModel(low, high);
    const ranges = await calibrate(model, tinyInput, shape, { method: 'minmax' });
    const quantized = quantizeGraph(model, ranges);
    t.is(quantized.foldedClips, folds ? 1 : 0, `Clip(${low}, ${high})`);
    const [expected, actual] = [await run(model), await run(quantized.bytes)];
    const tolerance = 2 * uint8Params(ranges.get('clip')!).scale + 2 * uint8Params(ranges.get('x')!).scale;
    t.true(
      expected.every((v, i) => Math.abs(v - actual[i]) <= tolerance),
      `Clip(${low}, ${high}): ${Array.from(expected).join()} vs ${Array.from(actual).join()}`,
    );
  }
});

test('a Clip stays when the Conv before it stays float (its input has no calibrated range), so the model computes the same', async (t) => {
  const model = tinyModel(0, 6);
  const ranges = await calibrate(model, tinyInput, { width: 4, height: 4 }, { method: 'minmax' });
  ranges.delete('x');
  const quantized = quantizeGraph(model, ranges);
  t.is(quantized.foldedClips, 0);
  t.is(quantized.quantizedNodes, 0);
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      return Array.from((await session.run({ x: new ort.Tensor('float32', tinyInput, [2, 3, 4, 4]) }, ['y'])).y.data as Float32Array);
    } finally {
      await session.release();
    }
  };
  t.deepEqual(await run(quantized.bytes), await run(model));
});

test('uint8 parameters cover the range with 0 on the grid, and models before opset 13 are refused', (t) => {
  const p = uint8Params({ min: -0.3, max: 2.1 });
  t.true(Number.isInteger(p.zeroPoint));
  t.true(p.scale * (0 - p.zeroPoint) <= -0.3 + p.scale / 2 && p.scale * (255 - p.zeroPoint) >= 2.1 - p.scale / 2);
  t.deepEqual(uint8Params({ min: 0, max: 6 }), { scale: 6 / 255, zeroPoint: 0 });
  t.deepEqual(uint8Params({ min: 0.5, max: 0.5 }), { scale: 0.5 / 255, zeroPoint: 0 });
  t.throws(() => quantizeGraph(tinyModel(0, 6, 11), new Map()), { message: /opset 11/ });
});

test('Conv weights already on a grid through 0 keep it (exact); others get largest |w| / 127 per channel', (t) => {
  const weightScales = (bytes: Uint8Array) => {
    const graph = onnx.ModelProto.decode(bytes).graph!;
    const scale = graph.initializer!.find((i) => i.name === 'w_scale')!;
    const quantized = graph.initializer!.find((i) => i.name === 'w_quantized')!;
    return { scales: Array.from(new Float32Array(Uint8Array.from(scale.rawData!).buffer)), q: Array.from(new Int8Array(Uint8Array.from(quantized.rawData!).buffer)) };
  };
  const ranges = new Map([
    ['x', { min: -2, max: 2 }],
    ['clip', { min: 0, max: 6 }],
  ]);
  // tinyModel's weights are quarters in −0.5..0.5: the grid step 0.25, every value an exact int8 multiple.
  const onGrid = weightScales(quantizeGraph(tinyModel(0, 6), ranges).bytes);
  t.deepEqual(onGrid.scales, [0.25, 0.25, 0.25, 0.25]);
  const weights = Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 4 - 0.5);
  t.deepEqual(
    onGrid.q.map((k) => k * 0.25),
    weights,
  );

  const offGrid = weightScales(
    quantizeGraph(
      tinyModel(0, 6, 13, (i) => Math.sin(i + 1)),
      ranges,
    ).bytes,
  );
  for (let c = 0; c < 4; c++) {
    const absMax = Math.max(...[0, 1, 2].map((k) => Math.abs(Math.sin(c * 3 + k + 1))));
    t.true(Math.abs(offGrid.scales[c] - absMax / 127) < 1e-7, `channel ${c}`);
  }
});
