/**
 * The kernels the rest of the package uses: the C++ addon when it loads, else the TS reference
 * (FLOWER_NATIVE_KERNELS=ts forces TS). Nothing happens at import: the addon is looked for on the
 * first kernel call or kernelInfo(). Every call is validated here, once, for both.
 */
import { constants as bufferConstants } from 'node:buffer';
import fs from 'node:fs';
import { addonStatus, nativeKernels, type FailedLocation } from './native.js';
import { tsKernels } from './ts.js';
import { checkBiMatch, checkExtractChunks, checkMultiplyRows, checkSymmetricEigen, checkTopK, MAX_INT32 } from './validate.js';
import type { Box, Kernels } from './types.js';

export * from './types.js';
export { tsKernels };

export interface KernelInfo {
  kernels: 'native' | 'ts';
  /** SIMD path in use ("none" for TS). */
  simd: string;
  /** Every SIMD path this CPU and OS support, best first (native only). */
  simdSupported?: string[];
  /** Top-k worker threads (native only). */
  threads?: number;
  /** The addon file in use (native only). */
  addon?: string;
  /** Why the TS kernels are in use. */
  reason?: string;
  /** Every location the addon was looked for, with why it did not load there. */
  tried?: FailedLocation[];
}

/** Wraps an implementation with the argument checks, so neither implementation sees bad input. */
function validated(impl: Kernels): Kernels {
  return {
    get name() {
      return impl.name;
    },
    get simd() {
      return impl.simd;
    },
    extractChunks(image, boxes, norm, out, firstSlot) {
      checkExtractChunks(image, boxes, norm, out, firstSlot);
      impl.extractChunks(image, boxes, norm, out, firstSlot);
    },
    cosineTopK(input) {
      checkTopK(input);
      return impl.cosineTopK(input);
    },
    async cosineTopKAsync(input) {
      checkTopK(input);
      return impl.cosineTopKAsync(input);
    },
    biMatch(input) {
      checkBiMatch(input);
      return impl.biMatch(input);
    },
    symmetricEigen(a, n) {
      checkSymmetricEigen(a, n);
      return impl.symmetricEigen(a, n);
    },
    multiplyRows(a, b, dim) {
      checkMultiplyRows(a, b, dim);
      return impl.multiplyRows(a, b, dim);
    },
  };
}

const validatedTs = validated(tsKernels);
let validatedNative: Kernels | undefined;
let activeImpl: Kernels | undefined;

/** The implementation in use, settled on the first call (which loads the addon). */
function active(): Kernels {
  if (!activeImpl) {
    const { addon } = addonStatus();
    activeImpl = addon ? nativeKernels(addon) : tsKernels;
  }
  return activeImpl;
}

/** The kernels in use: native when the addon loads, else TS. */
export const kernels: Kernels = validated({
  get name() {
    return active().name;
  },
  get simd() {
    return active().simd;
  },
  extractChunks: (image, boxes, norm, out, firstSlot) => active().extractChunks(image, boxes, norm, out, firstSlot),
  cosineTopK: (input) => active().cosineTopK(input),
  cosineTopKAsync: (input) => active().cosineTopKAsync(input),
  biMatch: (input) => active().biMatch(input),
  symmetricEigen: (a, n) => active().symmetricEigen(a, n),
  multiplyRows: (a, b, dim) => active().multiplyRows(a, b, dim),
});

/**
 * Validated kernels of one kind: 'native' throws when the addon is not in use (with the reason),
 * 'ts' is always there. Without an argument, the same as `kernels`.
 */
export function loadKernels(kind?: 'native' | 'ts'): Kernels {
  if (kind === 'ts') return validatedTs;
  if (kind !== 'native') return kernels;
  const status = addonStatus();
  if (!status.addon) throw new Error(`native kernels unavailable: ${status.reason}`);
  return (validatedNative ??= validated(nativeKernels(status.addon)));
}

/** Which kernels and SIMD path are active, and where the addon came from or why it did not load, for `doctor`. */
export function kernelInfo(): KernelInfo {
  const status = addonStatus();
  if (!status.addon) return { kernels: 'ts', simd: 'none', reason: status.reason, ...(status.tried && { tried: status.tried }) };
  const { addon, file } = status;
  return { kernels: 'native', simd: addon.simd(), simdSupported: addon.simdLevels(), threads: addon.threads(), addon: file };
}

/** Window origins along one side: every `stride`, the last one snapped to the far border, no repeats. */
function windowStarts(side: number, window: number, stride: number): number[] {
  if (side <= window) return [0];
  const starts: number[] = [];
  for (let start = 0; start + window < side; start += stride) starts.push(start);
  starts.push(side - window);
  return starts;
}

/**
 * Sliding windows over a width × height image, row by row: `window`-sized squares every `stride`
 * pixels, the last row/column snapped to the border so every pixel is covered, no duplicates.
 * A side shorter than the window gets one window clamped to that side (so such boxes are smaller
 * than `window`); the normalizer resizes images so the shorter side is at least the window.
 * Full coverage needs stride <= window (a larger stride samples windows with gaps between them).
 */
export function slidingWindows(width: number, height: number, window: number, stride: number): Box[] {
  for (const [name, value] of [
    ['width', width],
    ['height', height],
    ['window', window],
    ['stride', stride],
  ] as const) {
    if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
    if (!Number.isInteger(value) || value < 1 || value > MAX_INT32) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const boxWidth = Math.min(window, width);
  const boxHeight = Math.min(window, height);
  const boxes: Box[] = [];
  for (const y of windowStarts(height, window, stride)) {
    for (const x of windowStarts(width, window, stride)) boxes.push({ x, y, width: boxWidth, height: boxHeight });
  }
  return boxes;
}

const MAX_EXTERNAL_BYTES = bufferConstants.MAX_LENGTH;

/**
 * A rows × dim float32 matrix stored at `byteOffset` of `file` (e.g. the data of a .npy file),
 * memory-mapped through the addon (copy-on-write: writes never reach the file; the mapping lives
 * as long as the array), or read into memory once when the addon is not in use or the file is
 * larger than Node allows an external buffer to be (buffer.constants.MAX_LENGTH, 4 GiB on Node 20).
 * The file must not shrink while mapped.
 */
export function openMatrixFile(file: string, byteOffset: number, rows: number, dim: number): Float32Array {
  if (typeof file !== 'string') throw new TypeError(`file must be a string, got ${typeof file}`);
  for (const [name, value] of [
    ['byteOffset', byteOffset],
    ['rows', rows],
    ['dim', dim],
  ] as const) {
    if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  if (byteOffset % 4 !== 0) throw new RangeError(`${file}: byteOffset ${byteOffset} is not a multiple of 4 (float32 alignment)`);
  const length = rows * dim;
  const size = fs.statSync(file).size;
  if (byteOffset + length * 4 > size) {
    throw new RangeError(`${file}: holds ${size} bytes, ${rows} rows x ${dim} float32 at offset ${byteOffset} need ${byteOffset + length * 4}`);
  }
  if (length === 0) return new Float32Array(0);
  // External (mapped) buffers are capped at buffer.constants.MAX_LENGTH (4 GiB on Node 20).
  const { addon } = addonStatus();
  if (addon && size <= MAX_EXTERNAL_BYTES) {
    try {
      return new Float32Array(addon.mapFile(file, MAX_EXTERNAL_BYTES), byteOffset, length);
    } catch {
      // No mapping to be had (e.g. Windows, or mmap refused): reading works everywhere.
    }
  }
  const matrix = new Float32Array(length);
  const fd = fs.openSync(file, 'r');
  try {
    // In windows of at most 1 GiB: a Uint8Array view cannot span more than 4 GiB.
    for (let done = 0; done < matrix.byteLength;) {
      const window = new Uint8Array(matrix.buffer, done, Math.min(matrix.byteLength - done, 1 << 30));
      const read = fs.readSync(fd, window, 0, window.length, byteOffset + done);
      if (read === 0) throw new RangeError(`${file}: ended early while reading the matrix`);
      done += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  return matrix;
}
