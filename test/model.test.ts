import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { decodeImage, resizeExact } from '../src/image/index.js';
import { tsKernels } from '../src/kernels/index.js';
import { IMAGENET_NORMALIZATION, loadModel, type ModelManifest } from '../src/model/index.js';
import { flowerImage, modelDir } from '../bench/fixtures.js';

const { onnx } = onnxProto;
const fixtureOnnx = path.join(modelDir, 'model.onnx');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flower-model-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The parts of the fixture's model.json these tests read or vary. */
interface FixtureModelJson {
  sha256: string;
  input: { mean: number[]; std: number[] } & Record<string, unknown>;
  outputs: Record<string, unknown>;
}

/** The fixture's model.json, parsed. */
async function fixtureModelJson(): Promise<FixtureModelJson> {
  return JSON.parse(await readFile(path.join(modelDir, 'model.json'), 'utf8')) as FixtureModelJson;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A model folder in the temp dir holding `json` as model.json and, optionally, an .onnx file. */
async function modelFolder(name: string, json: unknown, onnxBytes?: Uint8Array): Promise<string> {
  const folder = await mkdtemp(path.join(dir, `${name}-`));
  if (json !== undefined) await writeFile(path.join(folder, 'model.json'), JSON.stringify(json));
  if (onnxBytes) await writeFile(path.join(folder, 'model.onnx'), onnxBytes);
  return folder;
}

/** The fixture model with its `embedding` output (and the Flatten node feeding it) removed. */
async function fixtureWithoutEmbedding(): Promise<Uint8Array> {
  const model = onnx.ModelProto.decode(await readFile(fixtureOnnx));
  const graph = model.graph!;
  graph.output = graph.output!.filter((o) => o.name !== 'embedding');
  graph.node = graph.node!.filter((n) => !n.output!.includes('embedding'));
  return onnx.ModelProto.encode(model).finish();
}

/** NCHW input for the whole fixture image squashed to the model's size. */
async function fixtureInput(manifest: ModelManifest, n: number): Promise<Float32Array> {
  const { width, height, norm } = manifest.input;
  const whole = await resizeExact(await decodeImage(flowerImage(n), { shorterSide: 256 }), width, height);
  const out = new Float32Array(3 * width * height);
  tsKernels.extractChunks(whole, [{ x: 0, y: 0, width, height }], norm, out, 0);
  return out;
}

async function runOutput(bytes: Uint8Array, inputName: string, output: string, input: Float32Array, size: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const result = await session.run({ [inputName]: new ort.Tensor('float32', input, [1, 3, size, size]) }, [output]);
    return result[output].data as Float32Array;
  } finally {
    await session.release();
  }
}

test('the fixture manifest is read as is: normalization in 0..1 units, declared embedding, verified sha256', async (t) => {
  const model = await loadModel(modelDir);
  const json = await fixtureModelJson();
  t.is(model.name, 'mobilenet_v2_1.0_224');
  t.is(model.file, fixtureOnnx);
  t.is(model.sha256, json.sha256);
  t.deepEqual(model.input, { name: 'pixel_values', width: 224, height: 224, layout: 'NCHW', norm: { mean: json.input.mean, std: json.input.std } });
  t.deepEqual(model.embedding, { name: 'embedding', dim: 1280, synthesized: false });
  t.is(sha256(model.bytes), json.sha256, 'the graph is used unedited');
});

test('a model file that does not match the manifest sha256 is refused', async (t) => {
  const json = await fixtureModelJson();
  const folder = await modelFolder('mismatch', { ...json, file: fixtureOnnx, sha256: 'ab'.repeat(32) });
  const err = await t.throwsAsync(loadModel(folder));
  t.regex(err.message, /sha256 ae7c73e3\w+ does not match model\.json \(abab/);
  t.true(err.message.startsWith(fixtureOnnx));
});

test('without an embedding output, the classifier input is exposed and equals the original embedding', async (t) => {
  const json = await fixtureModelJson();
  const stripped = await fixtureWithoutEmbedding();
  const { embedding: _removed, ...outputs } = json.outputs;
  const folder = await modelFolder('stripped', { ...json, sha256: sha256(stripped), outputs }, stripped);

  const model = await loadModel(folder);
  t.is(model.sha256, sha256(stripped), 'identity is the file on disk, not the edited graph');
  t.deepEqual(model.embedding, { name: 'embedding', dim: 1280, synthesized: true });

  const original = await loadModel(modelDir);
  for (const n of [1, 500]) {
    const input = await fixtureInput(model, n);
    const want = await runOutput(original.bytes, original.input.name, 'embedding', input, 224);
    const got = await runOutput(model.bytes, model.input.name, model.embedding.name, input, 224);
    t.is(got.length, 1280);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
    t.true(maxDiff < 1e-4, `image ${n}: max difference ${maxDiff}`);
    t.true(
      want.some((x) => x > 0.1),
      'the embedding is not all zeros',
    );
  }
});

test('a bare .onnx folder (no model.json) uses the graph input and ImageNet normalization', async (t) => {
  const folder = await modelFolder('bare', undefined, await fixtureWithoutEmbedding());
  const model = await loadModel(folder);
  t.deepEqual(model.input, { name: 'pixel_values', width: 224, height: 224, layout: 'NCHW', norm: IMAGENET_NORMALIZATION });
  t.true(model.embedding.synthesized);
  t.is(model.name, path.basename(folder));
});

/** input [N,3,4,4] → GlobalAveragePool → Flatten → Gemm(transB, 3 → 5) → Softmax → "probs". */
function tinyGemmClassifier(): Uint8Array {
  const weights = Array.from({ length: 15 }, (_, i) => (i % 4) - 1.5);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 3 }, { dimValue: 4 }, { dimValue: 4 }] } } } }],
      output: [{ name: 'probs', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 5 }] } } } }],
      initializer: [
        { name: 'W', dataType: 1, dims: [5, 3], floatData: weights },
        { name: 'B', dataType: 1, dims: [5], floatData: [0, 0, 0, 0, 0] },
      ],
      node: [
        { opType: 'GlobalAveragePool', input: ['x'], output: ['pooled'] },
        { opType: 'Flatten', input: ['pooled'], output: ['flat'], attribute: [{ name: 'axis', type: 2, i: 1 }] },
        { opType: 'Gemm', name: 'fc', input: ['flat', 'W', 'B'], output: ['logits'], attribute: [{ name: 'transB', type: 2, i: 1 }] },
        { opType: 'Softmax', input: ['logits'], output: ['probs'], attribute: [{ name: 'axis', type: 2, i: 1 }] },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

test('a Gemm classifier behind Softmax: the synthesized embedding is its pooled input', async (t) => {
  const folder = await modelFolder('gemm', { name: 'tiny', input: { width: 4, height: 4, mean: [0, 0, 0], std: [1, 1, 1] } }, tinyGemmClassifier());
  const model = await loadModel(folder);
  t.deepEqual(model.embedding, { name: 'embedding', dim: 3, synthesized: true });
  t.is(model.input.name, 'x');
  const input = Float32Array.from({ length: 48 }, (_, i) => Math.floor(i / 16) + (i % 16) / 16); // channel c: c + 0..15/16
  const got = await runOutput(model.bytes, 'x', 'embedding', input, 4);
  t.deepEqual(
    Array.from(got),
    [0, 1, 2].map((c) => c + 7.5 / 16),
  );
});

test('manifest mistakes are reported with the file and what is wrong', async (t) => {
  const json = await fixtureModelJson();
  const wrongOutput = await modelFolder('wrong-output', { ...json, file: fixtureOnnx, outputs: { embedding: { name: 'features', dim: 1280 } } });
  await t.throwsAsync(loadModel(wrongOutput), { message: /names the embedding output "features", but the graph's outputs are embedding, logits/ });
  const nhwc = await modelFolder('nhwc', { ...json, file: fixtureOnnx, input: { ...json.input, layout: 'NHWC' } });
  await t.throwsAsync(loadModel(nhwc), { message: /input layout NHWC is not supported/ });
  const empty = await modelFolder('empty', undefined);
  await t.throwsAsync(loadModel(empty), { message: /no model\.json, and no \.onnx file/ });
  const notOnnx = await modelFolder('not-onnx', { ...json, sha256: undefined }, new TextEncoder().encode('definitely not protobuf'));
  await t.throwsAsync(loadModel(notOnnx), { message: /not a readable ONNX model/ });
});

test('precision: fp32 unless model.json says int8, which names its float source by sha256; anything else is refused', async (t) => {
  const json = await fixtureModelJson();
  const fp32 = await loadModel(modelDir);
  t.is(fp32.precision, 'fp32');
  t.is(fp32.quantizedFrom, undefined, "a float model's source (its TFLite origin) is not a quantization source");
  const int8 = await loadModel(await modelFolder('int8', { ...json, file: fixtureOnnx, precision: 'int8', source: { sha256: 'cd'.repeat(32) } }));
  t.is(int8.precision, 'int8');
  t.is(int8.quantizedFrom, 'cd'.repeat(32));
  const fp16 = await modelFolder('fp16', { ...json, file: fixtureOnnx, precision: 'fp16' });
  await t.throwsAsync(loadModel(fp16), { message: /model\.json precision "fp16" is not one of fp32, int8/ });
});
