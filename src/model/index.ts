/**
 * Model loading: `model.json` (the manifest: input name/size/layout, normalization, outputs) plus the
 * ONNX bytes, checked against the manifest's sha256. A model without an embedding output gets one
 * by graph surgery (see graph.ts), so any ImageNet-style classifier can be used as an encoder.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Normalization } from '../kernels/types.js';
import { describeGraph, synthesizeEmbedding } from './graph.js';

export { describeGraph, synthesizeEmbedding } from './graph.js';

export const MODEL_PRECISIONS = ['fp32', 'int8'] as const;
export type ModelPrecision = (typeof MODEL_PRECISIONS)[number];

export interface ModelManifest {
  readonly name: string;
  /** Absolute path of the .onnx file. */
  readonly file: string;
  /** Hex sha256 of the .onnx file as stored (before any in-memory graph edit): the model's identity in a workspace. */
  readonly sha256: string;
  readonly input: { readonly name: string; readonly width: number; readonly height: number; readonly layout: 'NCHW'; readonly norm: Normalization };
  /** The output the encoder fetches; `synthesized` when loadModel added it to the graph. */
  readonly embedding: { readonly name: string; readonly dim: number; readonly synthesized: boolean };
  /** model.json's `precision` (fp32 when absent); an int8 model names the float model it was quantized from by sha256. */
  readonly precision: ModelPrecision;
  readonly quantizedFrom?: string;
}

export interface LoadedModel extends ModelManifest {
  /** The ONNX model to run (the edited graph when the embedding was synthesized). */
  readonly bytes: Uint8Array;
}

/** Used only when a model folder has no model.json (e.g. a bare ONNX model zoo file). */
export const IMAGENET_NORMALIZATION: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The subset of model.json this package reads (see the fixture model's model.json). */
interface ModelJson {
  name?: string;
  file?: string;
  sha256?: string;
  input?: { name?: string; layout?: string; width?: number; height?: number; mean?: number[]; std?: number[]; mean_255?: number[]; std_255?: number[] };
  outputs?: { embedding?: { name?: string; dim?: number }; logits?: { name?: string } };
  precision?: string;
  source?: { sha256?: string };
}

/**
 * Read `modelDir/model.json` and its ONNX file. A sha256 mismatch is an error, not a warning: the
 * hash is what a workspace records to refuse mixing vectors of two models, so a silently swapped
 * file would corrupt search results. Without model.json, the folder's single .onnx file is used
 * with its graph's input and ImageNet normalization.
 */
export async function loadModel(modelDir: string): Promise<LoadedModel> {
  const dir = path.resolve(modelDir);
  const json = await readManifestJson(dir);
  const file = path.resolve(dir, json?.file ?? (await soleOnnxFile(dir)));
  let original: Uint8Array;
  try {
    original = await readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot read the model (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const sha256 = createHash('sha256').update(original).digest('hex');
  if (json?.sha256 && json.sha256.toLowerCase() !== sha256) {
    throw new Error(`${file}: sha256 ${sha256} does not match model.json (${json.sha256}); the file is damaged or was replaced, download it again or fix model.json`);
  }

  let graph: ReturnType<typeof describeGraph>;
  try {
    graph = describeGraph(original);
  } catch (err) {
    throw new Error(`${file}: not a readable ONNX model (${(err as Error).message})`);
  }
  const input = resolveInput(file, json, graph.input);
  const precision = resolvePrecision(file, json);
  const identity = { name: json?.name ?? path.basename(dir), file, sha256, input, ...precision };

  const declared = json?.outputs?.embedding;
  if (declared?.name) {
    if (!graph.outputs.includes(declared.name)) throw new Error(`${file}: model.json names the embedding output "${declared.name}", but the graph's outputs are ${graph.outputs.join(', ')}`);
    if (!declared.dim) throw new Error(`${dir}/model.json: outputs.embedding.dim is missing`);
    return { ...identity, embedding: { name: declared.name, dim: declared.dim, synthesized: false }, bytes: original };
  }
  let edited: ReturnType<typeof synthesizeEmbedding>;
  try {
    edited = synthesizeEmbedding(original, { from: json?.outputs?.logits?.name });
  } catch (err) {
    throw new Error(`${file}: no embedding output and none could be synthesized: ${(err as Error).message}`);
  }
  return { ...identity, embedding: { name: edited.name, dim: edited.dim, synthesized: true }, bytes: edited.bytes };
}

async function readManifestJson(dir: string): Promise<ModelJson | undefined> {
  const file = path.join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot read (${code ?? String(err)})`);
  }
  try {
    return JSON.parse(text) as ModelJson;
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

async function soleOnnxFile(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.onnx'));
  } catch (err) {
    throw new Error(`${dir}: cannot read the model folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (names.length !== 1) throw new Error(`${dir}: no model.json, and ${names.length === 0 ? 'no .onnx file' : `several .onnx files (${names.join(', ')})`} to pick from`);
  return names[0];
}

function resolvePrecision(file: string, json: ModelJson | undefined): Pick<ModelManifest, 'precision' | 'quantizedFrom'> {
  const precision = json?.precision ?? 'fp32';
  if (!(MODEL_PRECISIONS as readonly string[]).includes(precision)) throw new Error(`${file}: model.json precision "${precision}" is not one of ${MODEL_PRECISIONS.join(', ')}`);
  if (precision === 'fp32') return { precision };
  const source = json?.source?.sha256;
  return source ? { precision: precision as ModelPrecision, quantizedFrom: source } : { precision: precision as ModelPrecision };
}

function resolveInput(file: string, json: ModelJson | undefined, graphInput: { name: string; dims: (number | string)[] }): ModelManifest['input'] {
  const spec = json?.input ?? {};
  const layout = spec.layout ?? 'NCHW';
  if (layout !== 'NCHW') throw new Error(`${file}: input layout ${layout} is not supported (NCHW only)`);
  const [, channels, graphHeight, graphWidth] = graphInput.dims;
  if (typeof channels === 'number' && channels !== 3) throw new Error(`${file}: input "${graphInput.name}" has ${channels} channels, expected 3 (RGB, NCHW)`);
  const size = (value: number | undefined, fromGraph: number | string | undefined, what: string) => {
    const v = value ?? (typeof fromGraph === 'number' && fromGraph > 0 ? fromGraph : 224);
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${file}: input ${what} must be a positive integer, got ${v}`);
    return v;
  };
  const triple = (unit: number[] | undefined, of255: number[] | undefined, fallback: readonly number[], what: string): [number, number, number] => {
    const v = unit ?? of255?.map((x) => x / 255) ?? fallback;
    if (v.length !== 3 || !v.every(Number.isFinite) || (what === 'std' && !v.every((x) => x > 0)))
      throw new Error(`${file}: input ${what} must be 3 finite numbers${what === 'std' ? ' > 0' : ''}, got ${JSON.stringify(v)}`);
    return [v[0], v[1], v[2]];
  };
  return {
    name: spec.name ?? graphInput.name,
    width: size(spec.width, graphWidth, 'width'),
    height: size(spec.height, graphHeight, 'height'),
    layout: 'NCHW',
    norm: {
      mean: triple(spec.mean, spec.mean_255, json ? [] : IMAGENET_NORMALIZATION.mean, 'mean'),
      std: triple(spec.std, spec.std_255, json ? [] : IMAGENET_NORMALIZATION.std, 'std'),
    },
  };
}
