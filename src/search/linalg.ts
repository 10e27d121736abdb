/**
 * The little dense linear algebra the learned ranking needs besides its kernels (products are
 * `Kernels.multiplyRows`, the symmetric eigendecomposition `Kernels.symmetricEigen`): row scaling
 * and transposition.
 */

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
