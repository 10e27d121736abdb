/** The TS reference kernels and the shared helpers, against values worked out by hand. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernels, openMatrixFile, slidingWindows, type Box, type KernelInfo, type SymmetricEigen } from '../src/kernels/index.js';
import { prng } from './helpers/prng.js';

const ts = loadKernels('ts');

test('slidingWindows: stride steps, last window snapped to the border, no duplicates', (t) => {
  const origins = (boxes: Box[]) => boxes.map((b) => [b.x, b.y]);
  t.deepEqual(origins(slidingWindows(256, 300, 224, 112)), [
    [0, 0],
    [32, 0],
    [0, 76],
    [32, 76],
  ]);
  t.deepEqual(origins(slidingWindows(448, 256, 224, 112)), [
    [0, 0],
    [112, 0],
    [224, 0],
    [0, 32],
    [112, 32],
    [224, 32],
  ]);
  t.deepEqual(slidingWindows(224, 224, 224, 112), [{ x: 0, y: 0, width: 224, height: 224 }]);
  // 336 = 224 + 112: the stride lands exactly on the border, so no extra snapped window.
  t.deepEqual(origins(slidingWindows(336, 224, 224, 112)), [
    [0, 0],
    [112, 0],
  ]);
});

test('slidingWindows: every pixel covered, boxes inside the image, for many sizes', (t) => {
  for (const [w, h] of [
    [256, 256],
    [257, 300],
    [500, 256],
    [1000, 743],
  ]) {
    const boxes = slidingWindows(w, h, 224, 112);
    const covered = new Uint8Array(w * h);
    const seen = new Set<string>();
    for (const b of boxes) {
      t.true(b.x >= 0 && b.y >= 0 && b.x + b.width <= w && b.y + b.height <= h, `${w}x${h}: box inside`);
      t.false(seen.has(`${b.x},${b.y}`), `${w}x${h}: duplicate window at ${b.x},${b.y}`);
      seen.add(`${b.x},${b.y}`);
      for (let y = b.y; y < b.y + b.height; y++) covered.fill(1, y * w + b.x, y * w + b.x + b.width);
    }
    t.true(
      covered.every((c) => c === 1),
      `${w}x${h}: every pixel covered`,
    );
  }
});

test('slidingWindows: a side shorter than the window gives one window clamped to that side', (t) => {
  t.deepEqual(slidingWindows(100, 300, 224, 112), [
    { x: 0, y: 0, width: 100, height: 224 },
    { x: 0, y: 76, width: 100, height: 224 },
  ]);
  t.throws(() => slidingWindows(0, 10, 224, 112), { instanceOf: RangeError });
  t.throws(() => slidingWindows(10, 10, 224, 0), { instanceOf: RangeError });
  t.throws(() => slidingWindows(10, 10, '224' as unknown as number, 112), { instanceOf: TypeError });
});

test('extractChunks: crop, planar layout and (x/255 - mean)/std, at the slot offset', (t) => {
  const norm = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.25] } as const;
  const v = (x: number, c: number) => Math.fround((x / 255 - 0.5) / norm.std[c]);
  // 3x2 RGB image; pixel (x, y) = [10x + y, 100 + x, 255 * y].
  const rgb = new Uint8Array(3 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) rgb.set([10 * x + y, 100 + x, 255 * y], (y * 3 + x) * 3);
  const out = new Float32Array(2 * 12).fill(7);
  ts.extractChunks({ data: rgb, width: 3, height: 2, channels: 3 }, [{ x: 1, y: 0, width: 2, height: 2 }], norm, out, 1);
  t.deepEqual([...out.subarray(0, 12)], new Array(12).fill(7), 'slot 0 untouched');
  t.deepEqual([...out.subarray(12)], [v(10, 0), v(20, 0), v(11, 0), v(21, 0), v(101, 1), v(102, 1), v(101, 1), v(102, 1), v(0, 2), v(0, 2), v(255, 2), v(255, 2)]);
  t.is(out[20], -2);
  t.is(out[22], 2);

  // Gray replicates to all three planes; RGBA ignores alpha.
  const gray = new Float32Array(3);
  ts.extractChunks({ data: Uint8Array.of(51, 0), width: 2, height: 1, channels: 1 }, [{ x: 0, y: 0, width: 1, height: 1 }], norm, gray, 0);
  t.deepEqual([...gray], [v(51, 0), v(51, 1), v(51, 2)]);
  const rgba = new Float32Array(3);
  ts.extractChunks({ data: Uint8Array.of(1, 2, 3, 99), width: 1, height: 1, channels: 4 }, [{ x: 0, y: 0, width: 1, height: 1 }], norm, rgba, 0);
  t.deepEqual([...rgba], [v(1, 0), v(2, 1), v(3, 2)]);
});

test('extractChunks: bad arguments throw TypeError/RangeError', (t) => {
  const image = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 as const };
  const norm = { mean: [0, 0, 0], std: [1, 1, 1] } as const;
  const box = { x: 0, y: 0, width: 2, height: 2 };
  t.throws(() => ts.extractChunks(image, [box], norm, new Float32Array(11), 0), { instanceOf: RangeError });
  t.throws(() => ts.extractChunks(image, [box], norm, new Float32Array(24), 2), { instanceOf: RangeError }, 'slot past the end');
  t.throws(() => ts.extractChunks(image, [{ ...box, x: 1 }], norm, new Float32Array(12), 0), { instanceOf: RangeError }, 'box outside');
  t.throws(() => ts.extractChunks(image, [box, { ...box, width: 1 }], norm, new Float32Array(24), 0), { instanceOf: RangeError }, 'mixed sizes');
  t.throws(() => ts.extractChunks({ ...image, data: new Uint8Array(11) }, [box], norm, new Float32Array(12), 0), { instanceOf: RangeError });
  t.throws(() => ts.extractChunks(image, [box], norm, new Float64Array(12) as unknown as Float32Array, 0), { instanceOf: TypeError });
  t.throws(() => ts.extractChunks({ ...image, data: [0] as unknown as Uint8Array }, [box], norm, new Float32Array(12), 0), { instanceOf: TypeError });
  t.throws(() => ts.extractChunks(image, [box], { mean: [0, 0, 0], std: [1, 0, 1] }, new Float32Array(12), 0), { instanceOf: RangeError });
});

// Rows (dim 2): r0 [1,0], r1 [0,1], r2 [0.6,0.8], r3 NaN, r4 zero, r5 = r0 (a tie with r0).
const matrix = Float32Array.of(1, 0, 0, 1, 0.6, 0.8, NaN, 0, 0, 0, 1, 0);

test('cosineTopK: best first, ties to the lower id, NaN rows skipped, zero rows score 0', (t) => {
  const r = ts.cosineTopK({ matrix, rows: 6, dim: 2, queries: Float32Array.of(1, 0, 0, 1), k: 3 });
  t.is(r.k, 3);
  t.deepEqual([...r.ids], [0, 5, 2, 1, 2, 0]);
  t.deepEqual([...r.scores], [1, 1, Math.fround(0.6), 1, Math.fround(0.8), 0]);
});

test('cosineTopK: k > rows gives rows slots, unfilled (NaN) slots are -1/-Infinity', (t) => {
  const r = ts.cosineTopK({ matrix, rows: 6, dim: 2, queries: Float32Array.of(0, 1), k: 100 });
  t.is(r.k, 6);
  t.deepEqual([...r.ids], [1, 2, 0, 4, 5, -1]);
  t.deepEqual([...r.scores], [1, Math.fround(0.8), 0, 0, 0, -Infinity]);
});

test('cosineTopK: k = 0, rows = 0 and no queries give empty results', (t) => {
  const empty = (k: number, rows: number, queries: Float32Array) => {
    const r = ts.cosineTopK({ matrix, rows, dim: 2, queries, k });
    return [r.k, r.ids.length, r.scores.length];
  };
  t.deepEqual(empty(0, 6, Float32Array.of(1, 0)), [0, 0, 0]);
  t.deepEqual(empty(5, 0, Float32Array.of(1, 0)), [0, 0, 0]);
  t.deepEqual(empty(5, 6, new Float32Array(0)), [5, 0, 0]);
});

test('cosineTopK: bad arguments throw TypeError/RangeError', async (t) => {
  const ok = { matrix, rows: 6, dim: 2, queries: Float32Array.of(1, 0), k: 2 };
  t.throws(() => ts.cosineTopK({ ...ok, matrix: new Float64Array(12) as unknown as Float32Array }), { instanceOf: TypeError });
  t.throws(() => ts.cosineTopK({ ...ok, queries: [1, 0] as unknown as Float32Array }), { instanceOf: TypeError });
  t.throws(() => ts.cosineTopK({ ...ok, k: -1 }), { instanceOf: RangeError });
  t.throws(() => ts.cosineTopK({ ...ok, k: 1.5 }), { instanceOf: RangeError });
  t.throws(() => ts.cosineTopK({ ...ok, k: 2 ** 40 }), { instanceOf: RangeError });
  t.throws(() => ts.cosineTopK({ ...ok, rows: 7 }), { instanceOf: RangeError }, 'matrix too small');
  t.throws(() => ts.cosineTopK({ ...ok, queries: Float32Array.of(1, 0, 0) }), { instanceOf: RangeError }, 'dimension mismatch');
  t.throws(() => ts.cosineTopK({ ...ok, dim: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(ts.cosineTopKAsync({ ...ok, k: -1 }), { instanceOf: RangeError });
  t.deepEqual(await ts.cosineTopKAsync(ok), ts.cosineTopK(ok));
});

// Three docs: doc0 = rows 0-1, doc1 = rows 2-4, doc2 = row 5. Two query chunks, k = 3.
const biMatchInput = {
  topk: { k: 3, ids: Int32Array.of(0, 2, 5, 2, 1, 3), scores: Float32Array.of(0.875, 0.75, 0.5, 0.625, 0.5, 0.25) },
  queryChunks: 2,
  chunkDoc: Int32Array.of(0, 0, 1, 1, 1, 2),
  docChunkCounts: Int32Array.of(2, 3, 1),
};

test('biMatch: a three-doc example worked out by hand', (t) => {
  const r = ts.biMatch(biMatchInput);
  t.deepEqual([...r.docs], [0, 1, 2]);
  t.deepEqual([...r.bestChunks], [0, 2, 5]);
  // doc0: both sides hit everything, distances 0.125 + 0.5 → 1 - 0.625/4000 on each side.
  // doc1: match side rows 2 (best 0.25) and 3 (0.75), one of 3 missed → 1 - 2001/6000;
  //       query side q0 0.25, q1 0.375 → 1 - 0.625/4000.
  // doc2: match side row 5 (0.5) of 1 → 1 - 0.5/2000; query side q0 0.5, q1 missed → 1 - 2000.5/4000.
  const expected = [1 - 0.625 / 4000, (1 - 2001 / 6000 + 1 - 0.625 / 4000) / 2, (1 - 0.5 / 2000 + 1 - 2000.5 / 4000) / 2];
  r.scores.forEach((s, i) => t.true(Math.abs(s - expected[i]) < 1e-12, `doc ${r.docs[i]}: ${s} vs ${expected[i]}`));
});

test('biMatch: equal scores rank the lower doc first; ids < 0 are ignored', (t) => {
  const r = ts.biMatch({
    topk: { k: 3, ids: Int32Array.of(1, 0, -1), scores: Float32Array.of(0.5, 0.5, -Infinity) },
    queryChunks: 1,
    chunkDoc: Int32Array.of(0, 1),
    docChunkCounts: Int32Array.of(1, 1),
  });
  t.deepEqual([...r.docs], [0, 1]);
  t.is(r.scores[0], r.scores[1]);
});

test('biMatch: bad arguments throw TypeError/RangeError', (t) => {
  t.throws(() => ts.biMatch({ ...biMatchInput, queryChunks: 3 }), { instanceOf: RangeError });
  t.throws(() => ts.biMatch({ ...biMatchInput, chunkDoc: Int32Array.of(0, 0, 1) }), { instanceOf: RangeError }, 'row out of range');
  t.throws(() => ts.biMatch({ ...biMatchInput, docChunkCounts: Int32Array.of(2, 3) }), { instanceOf: RangeError }, 'doc out of range');
  t.throws(() => ts.biMatch({ ...biMatchInput, docChunkCounts: Int32Array.of(2, 0, 1) }), { instanceOf: RangeError }, 'empty doc');
  t.throws(() => ts.biMatch({ ...biMatchInput, chunkDoc: [0] as unknown as Int32Array }), { instanceOf: TypeError });
});

/** Values descending, A·v = λv and V·Vᵀ = I within `tol`, every vector's largest-magnitude component positive. */
function assertEigenpairs(t: import('ava').ExecutionContext, a: Float64Array, n: number, { values, vectors }: SymmetricEigen, tol: number): void {
  t.is(values.length, n);
  t.is(vectors.length, n * n);
  for (let i = 0; i < n; i++) {
    const v = vectors.subarray(i * n, (i + 1) * n);
    if (i > 0 && values[i] > values[i - 1]) t.fail(`values[${i}] = ${values[i]} > values[${i - 1}] = ${values[i - 1]}`);
    const largest = v.reduce((best, x, k) => (Math.abs(x) > Math.abs(v[best]) ? k : best), 0);
    if (!(v[largest] > 0)) t.fail(`vector ${i}: largest component ${v[largest]} is not positive`);
    for (let r = 0; r < n; r++) {
      let av = 0;
      for (let k = 0; k < n; k++) av += a[r * n + k] * v[k];
      if (!(Math.abs(av - values[i] * v[r]) <= tol)) t.fail(`vector ${i}, row ${r}: (A·v) ${av} vs λv ${values[i] * v[r]}`);
    }
    for (let j = 0; j <= i; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += v[k] * vectors[j * n + k];
      if (!(Math.abs(dot - (i === j ? 1 : 0)) <= tol)) t.fail(`vectors ${i}·${j} = ${dot}`);
    }
  }
  t.pass();
}

/** Q · diag(values) · Qᵀ for a seeded random orthogonal Q (Gram–Schmidt of random rows). */
function withEigenvalues(values: readonly number[], seed: number): Float64Array {
  const n = values.length;
  const rand = prng(seed);
  const q = new Float64Array(n * n).map(() => rand() * 2 - 1);
  for (let i = 0; i < n; i++) {
    const row = q.subarray(i * n, (i + 1) * n);
    for (let j = 0; j < i; j++) {
      const prev = q.subarray(j * n, (j + 1) * n);
      const dot = row.reduce((s, x, k) => s + x * prev[k], 0);
      row.forEach((x, k) => (row[k] = x - dot * prev[k]));
    }
    const norm = Math.hypot(...row);
    row.forEach((x, k) => (row[k] = x / norm));
  }
  const a = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let i = 0; i < n; i++) a[r * n + c] += q[i * n + r] * values[i] * q[i * n + c];
  return a;
}

test('symmetricEigen: a 3x3 matrix with eigenvalues 6, 2, -1 worked out by hand', (t) => {
  // 6·u uᵀ + 2·w wᵀ - e₃e₃ᵀ with u = (0.6, 0.8, 0), w = (0.8, -0.6, 0).
  const a = Float64Array.of(3.44, 1.92, 0, 1.92, 4.56, 0, 0, 0, -1);
  const copy = Float64Array.from(a);
  const r = ts.symmetricEigen(a, 3);
  t.deepEqual(a, copy, 'a is only read');
  const expected = { values: [6, 2, -1], vectors: [0.6, 0.8, 0, 0.8, -0.6, 0, 0, 0, 1] };
  r.values.forEach((v, i) => t.true(Math.abs(v - expected.values[i]) < 1e-12, `values[${i}] = ${v}`));
  r.vectors.forEach((v, i) => t.true(Math.abs(v - expected.vectors[i]) < 1e-12, `vectors[${i}] = ${v}`));
  assertEigenpairs(t, a, 3, r, 1e-9);
  t.deepEqual([...ts.symmetricEigen(Float64Array.of(-2.5), 1).values], [-2.5]);
});

test('symmetricEigen: zero matrix and repeated eigenvalues still give orthonormal eigenvectors', (t) => {
  const zero = ts.symmetricEigen(new Float64Array(25), 5);
  t.deepEqual([...zero.values], [0, 0, 0, 0, 0]);
  assertEigenpairs(t, new Float64Array(25), 5, zero, 1e-12);
  const spectrum = [3, 3, 3, 1, 1, 0, -2, -2];
  const a = withEigenvalues(spectrum, 11);
  const r = ts.symmetricEigen(a, spectrum.length);
  r.values.forEach((v, i) => t.true(Math.abs(v - spectrum[i]) < 1e-9, `values[${i}] = ${v}, expected ${spectrum[i]}`));
  assertEigenpairs(t, a, spectrum.length, r, 1e-9);
});

test('symmetricEigen: bad arguments throw TypeError/RangeError', (t) => {
  const a = new Float64Array(4);
  t.throws(() => ts.symmetricEigen(new Float32Array(4) as unknown as Float64Array, 2), { instanceOf: TypeError, message: /Float64Array/ });
  t.throws(() => ts.symmetricEigen([0, 0, 0, 0] as unknown as Float64Array, 2), { instanceOf: TypeError });
  t.throws(() => ts.symmetricEigen(a, '2' as unknown as number), { instanceOf: TypeError });
  t.throws(() => ts.symmetricEigen(a, 0), { instanceOf: RangeError });
  t.throws(() => ts.symmetricEigen(a, 1.5), { instanceOf: RangeError });
  t.throws(() => ts.symmetricEigen(a, 3), { instanceOf: RangeError, message: /needs 9/ });
  t.throws(() => ts.symmetricEigen(Float64Array.of(1, NaN, NaN, 1), 2), { instanceOf: RangeError, message: /not finite/ });
  t.throws(() => ts.symmetricEigen(Float64Array.of(1, 0, 0, Infinity), 2), { instanceOf: RangeError, message: /not finite/ });
});

test('multiplyRows: a 2x3 times 3x3 product worked out by hand, row-major m x p', (t) => {
  // a's rows (1, 2, 3) and (-1, 0.5, 0); b's rows e₁, (1, 1, 1) and (0, -2, 4).
  const a = Float32Array.of(1, 2, 3, -1, 0.5, 0);
  const b = Float32Array.of(1, 0, 0, 1, 1, 1, 0, -2, 4);
  t.deepEqual([...ts.multiplyRows(a, b, 3)], [1, 6, 8, -1, -0.5, -1]);
  t.deepEqual([...ts.multiplyRows(b, a, 3)], [1, -1, 6, -0.5, 8, -1], 'the transposed product');
  t.deepEqual([...ts.multiplyRows(Float32Array.of(3), Float32Array.of(2, -1, 0.5), 1)], [6, -3, 1.5], 'dim 1');
  t.deepEqual(ts.multiplyRows(new Float32Array(0), b, 3), new Float32Array(0), 'no rows in a');
  // Summed in float64, rounded once: 1 + 2⁻³⁰ - 1 in float32 steps would be 0.
  t.deepEqual([...ts.multiplyRows(Float32Array.of(1, 2 ** -30, -1), Float32Array.of(1, 1, 1), 3)], [2 ** -30]);
});

test("multiplyRows: blocks of 16 rows: every entry of a 37x21 product is its row pair's dot product", (t) => {
  const rand = prng(3);
  const [m, p, dim] = [37, 21, 5];
  const a = new Float32Array(m * dim).map(() => rand() * 2 - 1);
  const b = new Float32Array(p * dim).map(() => rand() * 2 - 1);
  const out = ts.multiplyRows(a, b, dim);
  t.is(out.length, m * p);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < p; j++) {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += a[i * dim + k] * b[j * dim + k];
      if (out[i * p + j] !== Math.fround(dot)) t.fail(`out[${i}][${j}] = ${out[i * p + j]}, a_i · b_j = ${dot}`);
    }
  }
  t.pass();
});

test('multiplyRows: bad arguments throw TypeError/RangeError', (t) => {
  const a = new Float32Array(6);
  t.throws(() => ts.multiplyRows(new Float64Array(6) as unknown as Float32Array, a, 3), { instanceOf: TypeError, message: /a must be a Float32Array/ });
  t.throws(() => ts.multiplyRows(a, [0, 0, 0] as unknown as Float32Array, 3), { instanceOf: TypeError, message: /b must be/ });
  t.throws(() => ts.multiplyRows(a, a, '3' as unknown as number), { instanceOf: TypeError });
  t.throws(() => ts.multiplyRows(a, a, 0), { instanceOf: RangeError });
  t.throws(() => ts.multiplyRows(a, a, -3), { instanceOf: RangeError });
  t.throws(() => ts.multiplyRows(a, a, 1.5), { instanceOf: RangeError });
  t.throws(() => ts.multiplyRows(new Float32Array(7), a, 3), { instanceOf: RangeError, message: /a holds 7 floats, not a multiple of dim 3/ });
  t.throws(() => ts.multiplyRows(a, new Float32Array(4), 3), { instanceOf: RangeError, message: /b holds 4 floats/ });
  t.throws(() => ts.multiplyRows(new Float32Array(2 ** 16), new Float32Array(2 ** 16), 1), { instanceOf: RangeError, message: /too large a result/ });
});

test('openMatrixFile: reads rows × dim float32 at an offset; too short a file is a RangeError', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernels-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'm.bin');
  const values = Float32Array.of(1, 2, 3, 4, 5, 6);
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(64, 0xff), Buffer.from(values.buffer)]));
  t.deepEqual([...openMatrixFile(file, 64, 3, 2)], [...values]);
  t.deepEqual([...openMatrixFile(file, 64, 0, 2)], []);
  t.throws(() => openMatrixFile(file, 64, 4, 2), { instanceOf: RangeError, message: /m\.bin/ });
  t.throws(() => openMatrixFile(file, 2, 1, 2), { instanceOf: RangeError });
  t.throws(() => openMatrixFile(path.join(dir, 'missing.bin'), 0, 1, 1), { message: /missing\.bin/ });
});

test('without a built addon the kernels fall back to TS, saying so once on stderr', (t) => {
  // A copy of the compiled kernels module whose ../../../build/Release holds no addon.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernels-noaddon-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kernelsDir = path.join(dir, 'dist', 'src', 'kernels');
  fs.cpSync(path.dirname(fileURLToPath(import.meta.resolve('../src/kernels/index.js'))), kernelsDir, { recursive: true });
  const script = `import { kernels, kernelInfo } from ${JSON.stringify(path.join(kernelsDir, 'index.js'))};
    const r = kernels.cosineTopK({ matrix: Float32Array.of(1, 0, 0, 1), rows: 2, dim: 2, queries: Float32Array.of(0, 1), k: 1 });
    console.log(JSON.stringify({ info: kernelInfo(), name: kernels.name, ids: [...r.ids] }));`;
  const env = { ...process.env };
  delete env.FLOWER_NATIVE_KERNELS;
  const stderrFile = path.join(dir, 'stderr.txt');
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', fs.openSync(stderrFile, 'w')] });
  const result = JSON.parse(stdout) as { info: KernelInfo & { reason: string }; name: string; ids: number[] };
  t.is(result.name, 'ts');
  t.is(result.info.kernels, 'ts');
  t.regex(result.info.reason, /native addon did not load/);
  t.deepEqual(result.ids, [1]);
  const warnings = fs
    .readFileSync(stderrFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('TypeScript kernels'));
  t.is(warnings.length, 1, 'one warning line');
});
