/**
 * Models the CLI can fetch by name. Each entry is downloaded as `<cache>/models/<name>/model.onnx`
 * beside a `model.json` (the format of the fixture model's), so `loadModel(dir)` works on it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import { cacheDir, fillCacheEntry, mirrorUrl } from './cache.js';
import { downloadFile, type DownloadHooks } from './http.js';

export interface ModelEntry {
  readonly description: string;
  readonly url: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly source: Record<string, string>;
  readonly input: {
    readonly name: string;
    readonly width: number;
    readonly height: number;
    readonly mean: readonly [number, number, number];
    readonly std: readonly [number, number, number];
  };
  /** As in model.json; without `embedding`, loadModel exposes the classifier's input as the embedding. */
  readonly outputs: Record<string, Record<string, unknown>>;
}

export const DEFAULT_MODEL = 'mobilenetv2-7';

export const MODEL_REGISTRY: Readonly<Record<string, ModelEntry>> = {
  'mobilenetv2-7': {
    description: 'ONNX model zoo MobileNetV2 1.0 (opset 7), ImageNet classifier; the embedding is the 1280-d input of its classifier',
    url: 'https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-7.onnx',
    sha256: 'c1c513582d56afceff8516c73804e484c81c6a830712ab6d682253f4a3cd042f',
    bytes: 14246826,
    source: { repository: 'onnx/models', file: 'validated/vision/classification/mobilenet/model/mobilenetv2-7.onnx' },
    input: { name: 'input', width: 224, height: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    outputs: { logits: { classes: 1000 } },
  },
};

export interface EnsureModelOptions extends DownloadHooks {
  cacheDir?: string;
  /** Download from here instead of the registry's address (or $FLOWER_NATIVE_MIRROR). */
  url?: string;
  /** Look names up here instead of MODEL_REGISTRY. */
  registry?: Readonly<Record<string, ModelEntry>>;
  timeoutMs?: number;
}

/** The folder of model `name` in the cache, downloading it first if it is not there. */
export async function ensureModel(name: string = DEFAULT_MODEL, opts: EnsureModelOptions = {}): Promise<string> {
  const registry = opts.registry ?? MODEL_REGISTRY;
  const entry = Object.hasOwn(registry, name) ? registry[name] : undefined;
  if (!entry) throw new Error(`unknown model "${name}": the known models are ${Object.keys(registry).join(', ')}; pass --model <folder with model.json + model.onnx> for another`);
  const cache = cacheDir(opts.cacheDir);
  const dir = path.join(cache, 'models', name);
  const modelFile = path.join(dir, 'model.onnx');
  const manifestFile = path.join(dir, 'model.json');
  // model.json is written only after model.onnx was verified and renamed into place.
  await fillCacheEntry(
    dir,
    () => fs.existsSync(manifestFile) && fs.existsSync(modelFile),
    async () => {
      await downloadFile({
        url: opts.url ?? mirrorUrl(path.posix.basename(new URL(entry.url).pathname)) ?? entry.url,
        dest: modelFile,
        sha256: entry.sha256,
        size: entry.bytes,
        onProgress: opts.onProgress,
        timeoutMs: opts.timeoutMs,
        offlineHint: `pass --model <folder>, or set FLOWER_NATIVE_CACHE to a folder that has models/${name}/model.onnx + model.json`,
      });
      writeFileAtomic(manifestFile, JSON.stringify(modelJson(name, entry), null, 2) + '\n');
    },
    `model ${name}`,
    opts.onWait,
  );
  return dir;
}

/** model.json in the fixture model's format (normalization in 0..1 and 0..255 units). */
function modelJson(name: string, entry: ModelEntry): Record<string, unknown> {
  const { input } = entry;
  return {
    name,
    description: entry.description,
    source: { ...entry.source, url: entry.url },
    file: 'model.onnx',
    sha256: entry.sha256,
    input: {
      name: input.name,
      layout: 'NCHW',
      height: input.height,
      width: input.width,
      channels: 'RGB',
      mean_255: input.mean.map((v) => Math.round(v * 255 * 1e6) / 1e6),
      std_255: input.std.map((v) => Math.round(v * 255 * 1e6) / 1e6),
      mean: input.mean,
      std: input.std,
    },
    outputs: entry.outputs,
  };
}
