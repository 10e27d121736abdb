/**
 * Eigendecomposition of a symmetric matrix in float64 TS (Householder tridiagonalization, then the
 * implicit QL algorithm): the reference for native/eigen.cc, which runs the same steps in C++.
 */
import type { SymmetricEigen } from './types.js';

/** See `Kernels.symmetricEigen`. O(n³): 6–10 s for n = 1280 on one core (the native kernel: under 2 s). */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  // w holds the TRANSPOSE of the textbook's working matrix V, so the inner loops walk rows, not columns.
  const w = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(w, d, e, n);
  diagonalize(w, d, e, n);
  // Stable sort: equal eigenvalues keep the QL order, as std::stable_sort does in C++.
  const order = Array.from(d.keys()).sort((i, j) => d[j] - d[i]);
  const values = Float64Array.from(order, (i) => d[i]);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => vectors.set(w.subarray(from * n, (from + 1) * n), to * n));
  for (let i = 0; i < n; i++) fixSign(vectors.subarray(i * n, (i + 1) * n));
  return { values, vectors };
}

/** An eigenvector's sign is arbitrary: make its largest-magnitude component (the first such) positive. */
function fixSign(v: Float64Array): void {
  let largest = 0;
  for (let k = 1; k < v.length; k++) if (Math.abs(v[k]) > Math.abs(v[largest])) largest = k;
  if (v[largest] < 0) for (let k = 0; k < v.length; k++) v[k] = -v[k];
}

/** Householder reduction to tridiagonal form (diagonal d, sub-diagonal e[1..]); w becomes the accumulated transform, transposed. */
function tridiagonalize(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1]!;
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j]!;
        w[i * n + j] = f;
        g = e[j] + w[row + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += w[row + k] * d[k];
          e[k] += w[row + k] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) w[row + k] -= f * e[k] + g * d[k];
        d[j] = w[row + i - 1]!;
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i]!;
    w[i * n + i] = 1;
    const h = d[i + 1];
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[next + k] / h;
      for (let j = 0; j <= i; j++) {
        const row = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += w[next + k] * w[row + k];
        for (let k = 0; k <= i; k++) w[row + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) w[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1]!;
    w[j * n + n - 1] = 0;
  }
  w[n * n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e): d becomes the eigenvalues, row i of w the eigenvector of d[i]. */
function diagonalize(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      do {
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          const a = i * n;
          const b = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const t = w[b + k];
            w[b + k] = s * w[a + k] + c * t;
            w[a + k] = c * w[a + k] - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}
