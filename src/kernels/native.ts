/**
 * The C++ addon (build/Release/flower_native.node) behind the `Kernels` interface. Arguments
 * arrive validated by index.ts; the addon re-checks sizes and throws JS errors, never crashes.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { BiMatchResult, Box, Kernels, Normalization, RawImage, TopKInput, TopKResult } from './types.js';

/** What flower_native.node exports (see native/addon.cc). */
export interface Addon {
  extractChunks(data: Uint8Array, width: number, height: number, channels: number, origins: Int32Array,
    boxWidth: number, boxHeight: number, meanStd: Float64Array, out: Float32Array, firstSlot: number): void;
  cosineTopK(matrix: Float32Array, rows: number, dim: number, queries: Float32Array, k: number): TopKResult;
  cosineTopKAsync(matrix: Float32Array, rows: number, dim: number, queries: Float32Array, k: number): Promise<TopKResult>;
  biMatch(ids: Int32Array, scores: Float32Array, k: number, queryChunks: number, chunkDoc: Int32Array, docChunkCounts: Int32Array): BiMatchResult;
  /** Maps a whole file (copy-on-write) if it is at most maxLength bytes; the ArrayBuffer unmaps it when collected. */
  mapFile(file: string, maxLength: number): ArrayBuffer;
  /** SIMD path in use, and every path this CPU and OS support (best first). */
  simd(): string;
  simdLevels(): string[];
  /** Switches to a supported path (tests use it to cover each one); throws for an unsupported one. */
  setSimd(level: string): void;
  /** Worker threads used by top-k (default: hardware concurrency, or $FLOWER_NATIVE_THREADS). */
  setThreads(threads: number): void;
  threads(): number;
  /** Memory-bandwidth probe for the benchmark: GB/s of a streaming sum and of a copy (read + write) over `bytes`, per repeat. */
  memoryBandwidth(bytes: number, threads: number, repeats: number): { sumGBs: number[]; copyGBs: number[] };
}

export const addonPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/flower_native.node');

/** Loads the addon; throws (with the loader's message) when it is missing or does not load. */
export function loadAddon(): Addon {
  return createRequire(import.meta.url)(addonPath) as Addon;
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
    biMatch: ({ topk, queryChunks, chunkDoc, docChunkCounts }) =>
      addon.biMatch(topk.ids, topk.scores, topk.k, queryChunks, chunkDoc, docChunkCounts),
  };
}
