/**
 * The little dense linear algebra the learned ranking needs: products through the kernels' top-k
 * (a dot product of every query row with every matrix row is what it computes; asking for k = rows
 * returns all of them), row scaling and transposition. The symmetric eigendecomposition is a
 * kernel (`Kernels.symmetricEigen`).
 */
import type { Kernels } from '../kernels/index.js';

/** Query rows per kernel call: bounds the top-k result buffers. */
const PRODUCT_BLOCK = 4096;

/**
 * `out[i][j] = a_i · b_j` for the m rows of `a` and the p rows of `b` (both `dim` wide): an m × p
 * matrix. The kernels return each query's scores sorted; they are put back in column order here.
 */
export function multiplyRows(impl: Kernels, a: Float32Array, b: Float32Array, dim: number): Float32Array {
  const m = a.length / dim;
  const p = b.length / dim;
  const out = new Float32Array(m * p);
  for (let start = 0; start < m; start += PRODUCT_BLOCK) {
    const end = Math.min(m, start + PRODUCT_BLOCK);
    const { ids, scores, k } = impl.cosineTopK({ matrix: b, rows: p, dim, queries: a.subarray(start * dim, end * dim), k: p });
    for (let i = start; i < end; i++) {
      const base = (i - start) * k;
      for (let j = 0; j < k; j++) {
        const col = ids[base + j];
        if (col >= 0) out[i * p + col] = scores[base + j]!;
      }
    }
  }
  return out;
}

/** Scale every row (`dim` wide) to unit length in place; zero rows stay zero. */
export function normalizeRows(x: Float32Array, dim: number): Float32Array {
  for (let base = 0; base < x.length; base += dim) {
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += x[base + j] * x[base + j];
    const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let j = 0; j < dim; j++) x[base + j] *= scale;
  }
  return x;
}

/** Transpose a rows × cols row-major matrix. */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}
