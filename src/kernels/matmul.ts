/**
 * Dense product of two sets of rows in TS: the reference for native/matmul.cc. Each product is
 * summed in float64 in dimension order and rounded once to float32, as the TS top-k scores a pair.
 */

/** Rows of `a` and of `b` per block: 2 × 16 rows of 1280 floats (160 KB) stay in cache while their 256 products are summed. */
const BLOCK_ROWS = 16;

/** See `Kernels.multiplyRows`. */
export function multiplyRows(a: Float32Array, b: Float32Array, dim: number): Float32Array {
  const m = a.length / dim;
  const p = b.length / dim;
  const out = new Float32Array(m * p);
  for (let i0 = 0; i0 < m; i0 += BLOCK_ROWS) {
    const iEnd = Math.min(m, i0 + BLOCK_ROWS);
    for (let j0 = 0; j0 < p; j0 += BLOCK_ROWS) {
      const jEnd = Math.min(p, j0 + BLOCK_ROWS);
      for (let i = i0; i < iEnd; i++) {
        const aBase = i * dim;
        for (let j = j0; j < jEnd; j++) {
          const bBase = j * dim;
          let sum = 0;
          for (let k = 0; k < dim; k++) sum += a[aBase + k] * b[bBase + k];
          out[i * p + j] = sum;
        }
      }
    }
  }
  return out;
}
