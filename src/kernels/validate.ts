/**
 * Argument checks shared by every kernel implementation: wrong types throw TypeError, wrong
 * sizes or ranges RangeError, before anything reaches the TS loops or crosses into C++.
 */
import type { BiMatchInput, Box, Normalization, RawImage, TopKInput } from './types.js';

/** Largest k, row count or result size accepted: ids are int32 and typed arrays have limits. */
export const MAX_INT32 = 2 ** 31 - 1;

function requireType(value: unknown, type: abstract new (...args: never[]) => object, what: string): void {
  if (!(value instanceof type)) {
    const got = value === null ? 'null' : typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
    throw new TypeError(`${what} must be a ${type.name}, got ${got}`);
  }
}

function requireInt(value: unknown, what: string, min: number, max = MAX_INT32): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export function checkExtractChunks(image: RawImage, boxes: readonly Box[], norm: Normalization, out: Float32Array, firstSlot: number): void {
  if (typeof image !== 'object' || image === null) throw new TypeError('image must be a RawImage object');
  requireType(image.data, Uint8Array, 'image.data');
  const width = requireInt(image.width, 'image.width', 1);
  const height = requireInt(image.height, 'image.height', 1);
  if (image.channels !== 1 && image.channels !== 3 && image.channels !== 4) {
    throw new RangeError(`image.channels must be 1, 3 or 4, got ${String(image.channels)}`);
  }
  if (image.data.length < width * height * image.channels) {
    throw new RangeError(`image.data holds ${image.data.length} bytes, a ${width}x${height}x${image.channels} image needs ${width * height * image.channels}`);
  }
  const boxesValue: unknown = boxes; // tested through an unknown: Array.isArray's `any[]` guard would make every box `any` below
  if (!Array.isArray(boxesValue)) throw new TypeError('boxes must be an array of Box');
  for (const [name, values] of [
    ['mean', norm?.mean],
    ['std', norm?.std],
  ] as const) {
    if (!values || values.length !== 3 || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new TypeError(`norm.${name} must be three finite numbers`);
    }
  }
  if (norm.std.some((s) => s === 0)) throw new RangeError('norm.std must not contain 0');
  requireType(out, Float32Array, 'out');
  requireInt(firstSlot, 'firstSlot', 0);
  if (boxes.length === 0) return;
  const boxWidth = requireInt(boxes[0]?.width, 'boxes[0].width', 1);
  const boxHeight = requireInt(boxes[0]?.height, 'boxes[0].height', 1);
  boxes.forEach((box, i) => {
    const x = requireInt(box?.x, `boxes[${i}].x`, 0);
    const y = requireInt(box?.y, `boxes[${i}].y`, 0);
    if (box.width !== boxWidth || box.height !== boxHeight) {
      throw new RangeError(`boxes[${i}] is ${box.width}x${box.height}, but every box must be ${boxWidth}x${boxHeight}`);
    }
    if (x + boxWidth > width || y + boxHeight > height) {
      throw new RangeError(`boxes[${i}] (${x},${y} ${boxWidth}x${boxHeight}) lies outside the ${width}x${height} image`);
    }
  });
  const needed = (firstSlot + boxes.length) * 3 * boxWidth * boxHeight;
  if (out.length < needed) throw new RangeError(`out holds ${out.length} floats, slots ${firstSlot}..${firstSlot + boxes.length - 1} need ${needed}`);
}

/** Checks a top-k call and returns the number of queries. */
export function checkTopK(input: TopKInput): number {
  if (typeof input !== 'object' || input === null) throw new TypeError('top-k input must be an object');
  const { matrix, rows, dim, queries, k } = input;
  requireType(matrix, Float32Array, 'matrix');
  requireType(queries, Float32Array, 'queries');
  requireInt(rows, 'rows', 0);
  requireInt(dim, 'dim', 1);
  requireInt(k, 'k', 0);
  if (matrix.length < rows * dim) throw new RangeError(`matrix holds ${matrix.length} floats, ${rows} rows x ${dim} need ${rows * dim}`);
  if (queries.length % dim !== 0) throw new RangeError(`queries length ${queries.length} is not a multiple of dim ${dim} (dimension mismatch)`);
  const queryCount = queries.length / dim;
  if (queryCount * Math.min(k, rows) > MAX_INT32) throw new RangeError(`${queryCount} queries x k ${Math.min(k, rows)} is too large a result`);
  return queryCount;
}

export function checkSymmetricEigen(a: Float64Array, n: number): void {
  requireType(a, Float64Array, 'a');
  requireInt(n, 'n', 1, Math.floor(Math.sqrt(MAX_INT32)));
  if (a.length !== n * n) throw new RangeError(`a holds ${a.length} values, an ${n}x${n} matrix needs ${n * n}`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new RangeError(`a[${i}] = ${a[i]} is not finite`);
}

export function checkMultiplyRows(a: Float32Array, b: Float32Array, dim: number): void {
  requireType(a, Float32Array, 'a');
  requireType(b, Float32Array, 'b');
  requireInt(dim, 'dim', 1);
  if (a.length % dim !== 0) throw new RangeError(`a holds ${a.length} floats, not a multiple of dim ${dim}`);
  if (b.length % dim !== 0) throw new RangeError(`b holds ${b.length} floats, not a multiple of dim ${dim}`);
  const m = a.length / dim;
  const p = b.length / dim;
  if (m * p > MAX_INT32) throw new RangeError(`${m} x ${p} is too large a result`);
}

export function checkBiMatch(input: BiMatchInput): void {
  if (typeof input !== 'object' || input === null) throw new TypeError('BiMatch input must be an object');
  const { topk, queryChunks, chunkDoc, docChunkCounts } = input;
  if (typeof topk !== 'object' || topk === null) throw new TypeError('topk must be a TopKResult');
  requireType(topk.ids, Int32Array, 'topk.ids');
  requireType(topk.scores, Float32Array, 'topk.scores');
  requireType(chunkDoc, Int32Array, 'chunkDoc');
  requireType(docChunkCounts, Int32Array, 'docChunkCounts');
  const k = requireInt(topk.k, 'topk.k', 0);
  requireInt(queryChunks, 'queryChunks', 0);
  if (topk.ids.length !== queryChunks * k || topk.scores.length !== queryChunks * k) {
    throw new RangeError(`topk.ids/scores must hold queryChunks x k = ${queryChunks * k} entries, got ${topk.ids.length}/${topk.scores.length}`);
  }
  for (let i = 0; i < topk.ids.length; i++) {
    const row = topk.ids[i];
    if (row < 0) continue;
    if (row >= chunkDoc.length) throw new RangeError(`topk.ids[${i}] = ${row} is not a chunk row (chunkDoc has ${chunkDoc.length})`);
    const doc = chunkDoc[row];
    if (doc < 0 || doc >= docChunkCounts.length) throw new RangeError(`chunkDoc[${row}] = ${doc} is not a doc index (docChunkCounts has ${docChunkCounts.length})`);
    if (docChunkCounts[doc] < 1) throw new RangeError(`docChunkCounts[${doc}] = ${docChunkCounts[doc]}, but chunk row ${row} belongs to it`);
  }
}
