/**
 * The C++ addon (flower_native.node) behind the `Kernels` interface: looked for in a list of
 * locations on first use, never at import. Arguments arrive validated by index.ts; the addon
 * re-checks sizes and throws JS errors, never crashes.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import type { BiMatchResult, Box, Kernels, Normalization, RawImage, SymmetricEigen, TopKInput, TopKResult } from './types.js';

/** The kernels and settings flower_native.node exports (see native/*_binding.cc), internal controls aside. */
export interface Addon {
  extractChunks(
    data: Uint8Array,
    width: number,
    height: number,
    channels: number,
    origins: Int32Array,
    boxWidth: number,
    boxHeight: number,
    meanStd: Float64Array,
    out: Float32Array,
    firstSlot: number,
  ): void;
  cosineTopK(matrix: Float32Array, rows: number, dim: number, queries: Float32Array, k: number): TopKResult;
  cosineTopKAsync(matrix: Float32Array, rows: number, dim: number, queries: Float32Array, k: number): Promise<TopKResult>;
  biMatch(ids: Int32Array, scores: Float32Array, k: number, queryChunks: number, chunkDoc: Int32Array, docChunkCounts: Int32Array): BiMatchResult;
  symmetricEigen(a: Float64Array, n: number): SymmetricEigen;
  multiplyRows(a: Float32Array, b: Float32Array, dim: number): Float32Array;
  /** Maps a whole file (copy-on-write) if it is at most maxLength bytes; the ArrayBuffer unmaps it when collected. */
  mapFile(file: string, maxLength: number): ArrayBuffer;
  /** SIMD path in use, and every path this CPU and OS support (best first). */
  simd(): string;
  simdLevels(): string[];
  /** Worker threads used by top-k and multiplyRows (default: hardware concurrency, or $FLOWER_NATIVE_THREADS). */
  threads(): number;
}

/** The addon's internal controls too, for tests and the benchmark (see internalAddon()). */
export interface InternalAddon extends Addon {
  /** Switches to a supported path (tests use it to cover each one); throws for an unsupported one. */
  _setSimd(level: string): void;
  _setThreads(threads: number): void;
  /** Memory-bandwidth probe for the benchmark: GB/s of a streaming sum and of a copy (read + write) over `bytes`, per repeat. */
  _memoryBandwidth(bytes: number, threads: number, repeats: number): { sumGBs: number[]; copyGBs: number[] };
}

/** A place the addon may be, and what puts it there. */
export interface AddonLocation {
  file: string;
  source: string;
}

export interface FailedLocation extends AddonLocation {
  /** Why it did not load: "not found", or the first line of the loader's error. */
  error: string;
}

/** Every location tried, each with its failure. */
export class AddonLoadError extends Error {
  constructor(readonly failures: FailedLocation[]) {
    super(`flower_native.node did not load from any of its ${failures.length} locations:\n` + failures.map(({ file, source, error }) => `  ${file} (${source}): ${error}`).join('\n'));
  }
}

/**
 * Where the addon is looked for, in order: the local builds first (cmake-js and node-gyp both
 * write build/Release, or build/Debug with --debug), then a prebuilt binary for this platform.
 */
export function addonLocations(): AddonLocation[] {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const platform = `${process.platform}-${process.arch}`;
  return [
    { file: path.join(root, 'build', 'Release', 'flower_native.node'), source: 'cmake-js or node-gyp build' },
    { file: path.join(root, 'build', 'Debug', 'flower_native.node'), source: 'debug build' },
    { file: path.join(root, 'prebuilds', platform, 'flower_native.node'), source: `prebuilt for ${platform}` },
  ];
}

/** The first of `locations` that loads; throws an AddonLoadError when none does. */
export function loadAddon(locations: readonly AddonLocation[] = addonLocations()): { addon: InternalAddon; file: string } {
  const require = createRequire(import.meta.url);
  const failures: FailedLocation[] = [];
  for (const location of locations) {
    try {
      return { addon: require(location.file) as InternalAddon, file: location.file };
    } catch (error) {
      // dlopen's messages start with the file's name, which the list already gives.
      const message = String((error as Error).message)
        .split('\n')[0]
        .replace(`${location.file}: `, '');
      failures.push({ ...location, error: (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' ? 'not found' : message });
    }
  }
  throw new AddonLoadError(failures);
}

/** The addon in use, or why there is none (`tried` lists the locations when it did not load). */
export type AddonStatus = { addon: InternalAddon; file: string } | { addon?: undefined; reason: string; tried?: FailedLocation[] };

let status: AddonStatus | undefined;

/**
 * Loads the addon on the first call (FLOWER_NATIVE_KERNELS=ts: never) and says once on stderr,
 * from the main thread only (worker threads load this module again), when it did not load.
 */
export function addonStatus(): AddonStatus {
  if (status) return status;
  if (process.env.FLOWER_NATIVE_KERNELS === 'ts') return (status = { reason: 'FLOWER_NATIVE_KERNELS=ts' });
  try {
    status = loadAddon();
  } catch (error) {
    if (!(error instanceof AddonLoadError)) throw error;
    const reason = `native addon did not load from ${error.failures.map(({ file, error }) => `${file} (${error})`).join(', ')}`;
    status = { reason, tried: error.failures };
    if (isMainThread) process.stderr.write(`flower-native: ${reason}; using the (slower) TypeScript kernels. Run \`npm run build:native\` to build it.\n`);
  }
  return status;
}

/** The loaded addon with its test and benchmark controls (SIMD path, threads, bandwidth probe); not part of the package's API. */
export function internalAddon(): InternalAddon | undefined {
  return addonStatus().addon;
}

/** Multiply-adds (rows × queries × dim) below which an async top-k runs synchronously (~50 µs of work). */
const SYNC_WORK_LIMIT = 1 << 19;

export function nativeKernels(addon: Addon): Kernels {
  return {
    name: 'native',
    get simd() {
      return addon.simd();
    },
    extractChunks(image: RawImage, boxes: readonly Box[], norm: Normalization, out: Float32Array, firstSlot: number) {
      if (boxes.length === 0) return;
      const origins = new Int32Array(boxes.length * 2);
      boxes.forEach((box, i) => {
        origins[2 * i] = box.x;
        origins[2 * i + 1] = box.y;
      });
      const meanStd = Float64Array.of(...norm.mean, ...norm.std);
      addon.extractChunks(image.data, image.width, image.height, image.channels, origins, boxes[0].width, boxes[0].height, meanStd, out, firstSlot);
    },
    cosineTopK: ({ matrix, rows, dim, queries, k }: TopKInput) => addon.cosineTopK(matrix, rows, dim, queries, k),
    // Small searches run inline: a hop to the libuv pool and back costs more than they do.
    cosineTopKAsync: async ({ matrix, rows, dim, queries, k }: TopKInput) =>
      rows * queries.length < SYNC_WORK_LIMIT ? addon.cosineTopK(matrix, rows, dim, queries, k) : addon.cosineTopKAsync(matrix, rows, dim, queries, k),
    biMatch: ({ topk, queryChunks, chunkDoc, docChunkCounts }) => addon.biMatch(topk.ids, topk.scores, topk.k, queryChunks, chunkDoc, docChunkCounts),
    symmetricEigen: (a, n) => addon.symmetricEigen(a, n),
    multiplyRows: (a, b, dim) => addon.multiplyRows(a, b, dim),
  };
}
