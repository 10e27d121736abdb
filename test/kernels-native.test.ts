/**
 * The C++ kernels against the TS reference on seeded random inputs, on every SIMD path this
 * machine supports (switched in-process with the addon's _setSimd), plus abuse of the raw addon.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernels, openMatrixFile, type Box, type KernelInfo, type RawImage, type TopKInput, type TopKResult } from '../src/kernels/index.js';
import { internalAddon } from '../src/kernels/native.js';
import { prng } from './helpers/prng.js';

const addon = internalAddon();
// Only when the addon genuinely did not build/load (or TS is forced) are these skipped.
const nativeTest = addon ? test.serial : test.skip;
const ts = loadKernels('ts');
const native = addon ? loadKernels('native') : ts;
const simdLevels = addon ? addon.simdLevels() : [];

const int = (rand: () => number, min: number, max: number) => min + Math.floor(rand() * (max - min + 1));

/**
 * Top-k input whose dot products are exact in float32 (entries are multiples of 1/4 in [-0.75, 0.75]),
 * so every summation order gives the same score and ids must match exactly, ties included.
 * Some rows are duplicated (ties), zero, or NaN.
 */
function gridTopK(rand: () => number): TopKInput {
  const dim = int(rand, 1, 300);
  const rows = int(rand, 0, 400);
  const queryCount = int(rand, 0, 9);
  const matrix = new Float32Array(rows * dim).map(() => int(rand, -3, 3) / 4);
  for (let r = 0; r < rows; r++) {
    const kind = rand();
    if (kind < 0.1 && r > 0) matrix.copyWithin(r * dim, int(rand, 0, r - 1) * dim, int(rand, 0, r - 1) * dim + dim);
    else if (kind < 0.13) matrix.fill(0, r * dim, r * dim + dim);
    else if (kind < 0.16) matrix[r * dim + int(rand, 0, dim - 1)] = NaN;
  }
  const queries = new Float32Array(queryCount * dim).map(() => int(rand, -3, 3) / 4);
  return { matrix, rows, dim, queries, k: int(rand, 0, rows + 5) };
}

/** Top-k input of random unit vectors (real-valued scores; rounding differs between paths). */
function unitTopK(rand: () => number): TopKInput {
  const dim = [1, 3, 7, 8, 15, 16, 17, 33, 64, 129, 1280][int(rand, 0, 10)];
  const rows = int(rand, 1, 1500);
  const unit = (count: number) => {
    const v = new Float32Array(count * dim).map(() => rand() * 2 - 1);
    for (let i = 0; i < count; i++) {
      const row = v.subarray(i * dim, (i + 1) * dim);
      const norm = Math.hypot(...row);
      row.forEach((x, j) => (row[j] = x / norm));
    }
    return v;
  };
  return { matrix: unit(rows), rows, dim, queries: unit(int(rand, 1, 12)), k: int(rand, 1, 60) };
}

function exactDot(input: TopKInput, query: number, row: number): number {
  let dot = 0;
  for (let j = 0; j < input.dim; j++) dot += input.matrix[row * input.dim + j] * input.queries[query * input.dim + j];
  return dot;
}

/**
 * Scores within 1e-5 and ids identical; where float rounding reorders two rows whose scores are
 * within 1e-5 of each other (or swaps one at the cut-off), the native id must be such a near-tie.
 */
function assertTopKMatches(t: import('ava').ExecutionContext, input: TopKInput, expected: TopKResult, got: TopKResult, where: string, exactIds: boolean): void {
  t.is(got.k, expected.k, `${where}: k`);
  t.is(got.ids.length, expected.ids.length, `${where}: result length`);
  for (let i = 0; i < expected.ids.length; i++) {
    const [e, g] = [expected.scores[i], got.scores[i]];
    if (!(e === g || Math.abs(e - g) <= 1e-5)) t.fail(`${where}: slot ${i} score ${g}, TS ${e}`);
    if (got.ids[i] === expected.ids[i]) continue;
    const nearTie = !exactIds && got.ids[i] >= 0 && Math.abs(exactDot(input, Math.floor(i / expected.k), got.ids[i]) - e) <= 1e-5;
    if (!nearTie) t.fail(`${where}: slot ${i} id ${got.ids[i]}, TS ${expected.ids[i]}`);
  }
  t.pass();
}

function forEachSimd(run: (level: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const initial = addon!.simd();
    try {
      for (const level of simdLevels) {
        addon!._setSimd(level);
        await run(level);
      }
    } finally {
      addon!._setSimd(initial);
    }
  };
}

nativeTest('the addon reports a supported SIMD path and at least scalar', (t) => {
  t.true(simdLevels.includes('scalar'));
  t.true(simdLevels.includes(addon!.simd()));
  t.log(`SIMD paths tested: ${simdLevels.join(', ')}`);
});

nativeTest('top-k: exact-score inputs give identical ids and scores (ties, NaN, zero rows), sync and async, every SIMD path', async (t) => {
  await forEachSimd(async (level) => {
    for (let seed = 1; seed <= 60; seed++) {
      const input = gridTopK(prng(seed));
      const expected = ts.cosineTopK(input);
      const where = `simd=${level} seed=${seed} rows=${input.rows} dim=${input.dim} k=${input.k}`;
      assertTopKMatches(t, input, expected, native.cosineTopK(input), where, true);
      assertTopKMatches(t, input, expected, await native.cosineTopKAsync(input), `${where} async`, true);
      // The AsyncWorker path itself (cosineTopKAsync above runs small inputs inline).
      const worker = await addon!.cosineTopKAsync(input.matrix, input.rows, input.dim, input.queries, input.k);
      assertTopKMatches(t, input, expected, worker, `${where} worker`, true);
    }
  })();
});

nativeTest('top-k: random unit vectors match TS within 1e-5, every SIMD path', async (t) => {
  await forEachSimd(async (level) => {
    for (let seed = 100; seed < 125; seed++) {
      const input = unitTopK(prng(seed));
      const where = `simd=${level} seed=${seed} rows=${input.rows} dim=${input.dim} k=${input.k}`;
      assertTopKMatches(t, input, ts.cosineTopK(input), await native.cosineTopKAsync(input), where, false);
    }
  })();
});

nativeTest('top-k: more queries than one kernel pass takes (40 > 32), and rows longer than one dimension slice (4100 > 2048), match exactly', async (t) => {
  await forEachSimd((level) => {
    const rand = prng(40);
    for (const [rows, dim, queryCount] of [
      [250, 67, 40],
      [40, 4100, 5],
    ]) {
      const input = { matrix: new Float32Array(rows * dim).map(() => int(rand, -3, 3) / 4), rows, dim, k: 9, queries: new Float32Array(queryCount * dim).map(() => int(rand, -3, 3) / 4) };
      assertTopKMatches(t, input, ts.cosineTopK(input), native.cosineTopK(input), `simd=${level} ${queryCount} queries, dim ${dim}`, true);
    }
  })();
});

nativeTest('top-k: the result does not depend on the number of threads', (t) => {
  const rand = prng(7);
  const rows = 5000,
    dim = 256;
  const input = { matrix: new Float32Array(rows * dim).map(() => int(rand, -3, 3) / 4), rows, dim, k: 50, queries: new Float32Array(3 * dim).map(() => int(rand, -3, 3) / 4) };
  const threads = addon!.threads();
  try {
    addon!._setThreads(1);
    const single = native.cosineTopK(input);
    for (const count of [2, 3, 8]) {
      addon!._setThreads(count);
      t.deepEqual(native.cosineTopK(input), single, `threads=${count}`);
    }
    t.deepEqual(single, ts.cosineTopK(input));
  } finally {
    addon!._setThreads(threads);
  }
});

nativeTest('top-k: edge cases match the TS semantics (k > rows, k = 0, rows = 0, no queries)', (t) => {
  const matrix = Float32Array.of(1, 0, 0, 1, 0.6, 0.8, NaN, 0, 0, 0, 1, 0);
  for (const [rows, k, queries] of [
    [6, 100, [0, 1]],
    [6, 0, [1, 0]],
    [0, 5, [1, 0]],
    [6, 3, []],
    [6, 6, [NaN, 1]],
  ] as const) {
    const input = { matrix, rows, dim: 2, queries: Float32Array.from(queries), k };
    t.deepEqual(native.cosineTopK(input), ts.cosineTopK(input), `rows=${rows} k=${k} queries=${queries.join(',')}`);
  }
});

function randomImage(rand: () => number): { image: RawImage; boxes: Box[] } {
  const channels = ([1, 3, 4] as const)[int(rand, 0, 2)];
  const width = int(rand, 1, 90),
    height = int(rand, 1, 90);
  const image = { data: new Uint8Array(width * height * channels).map(() => int(rand, 0, 255)), width, height, channels };
  const bw = int(rand, 1, width),
    bh = int(rand, 1, height);
  const boxes = Array.from({ length: int(rand, 1, 5) }, () => ({ x: int(rand, 0, width - bw), y: int(rand, 0, height - bh), width: bw, height: bh }));
  return { image, boxes };
}

nativeTest('extractChunks: random images, channels and boxes match TS within 1e-6', (t) => {
  for (let seed = 1; seed <= 80; seed++) {
    const rand = prng(seed);
    const { image, boxes } = randomImage(rand);
    const norm = { mean: [rand(), rand(), rand()], std: [0.1 + rand(), 0.1 + rand(), 0.1 + rand()] } as const;
    const firstSlot = int(rand, 0, 2);
    const size = (firstSlot + boxes.length + 1) * 3 * boxes[0].width * boxes[0].height;
    const expected = new Float32Array(size).fill(-7),
      got = new Float32Array(size).fill(-7);
    ts.extractChunks(image, boxes, norm, expected, firstSlot);
    native.extractChunks(image, boxes, norm, got, firstSlot);
    let worst = 0;
    for (let i = 0; i < size; i++) worst = Math.max(worst, Math.abs(expected[i] - got[i]));
    t.true(worst <= 1e-6, `seed=${seed} channels=${image.channels} ${image.width}x${image.height}: max difference ${worst}`);
  }
});

nativeTest('biMatch: random top-k outputs give the same docs, order, best chunks and scores within 1e-6', (t) => {
  for (let seed = 1; seed <= 80; seed++) {
    const rand = prng(seed);
    const docs = int(rand, 1, 40);
    const docChunkCounts = Int32Array.from({ length: docs }, () => int(rand, 1, 12));
    const chunkDoc = Int32Array.from(Array.from(docChunkCounts).flatMap((count, doc) => new Array<number>(count).fill(doc)));
    const input = gridTopK(prng(seed + 1000));
    const rows = Math.min(input.rows, chunkDoc.length);
    const topk = ts.cosineTopK({ ...input, rows, k: Math.min(input.k, 30) });
    const queryChunks = topk.ids.length / Math.max(topk.k, 1);
    if (topk.k === 0) continue;
    const bi = { topk, queryChunks, chunkDoc, docChunkCounts };
    const [expected, got] = [ts.biMatch(bi), native.biMatch(bi)];
    const where = `seed=${seed} docs=${docs} queryChunks=${queryChunks} k=${topk.k}`;
    t.deepEqual([...got.docs], [...expected.docs], `${where}: order`);
    t.deepEqual([...got.bestChunks], [...expected.bestChunks], `${where}: best chunks`);
    expected.scores.forEach((s, i) => t.true(Math.abs(s - got.scores[i]) <= 1e-6, `${where}: doc ${expected.docs[i]} ${got.scores[i]} vs ${s}`));
  }
});

nativeTest('biMatch: non-finite input scores give the same ranking as TS, never a crash', (t) => {
  const scores = Float32Array.of(Infinity, -Infinity, NaN, 0.5, -Infinity, Infinity, 0.25, NaN);
  const topk = { k: 4, ids: Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7), scores };
  // Two hits per doc, then one hit per doc (the native side takes a shortcut for those).
  for (const chunkDoc of [Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3), Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7)]) {
    const docChunkCounts = new Int32Array(Math.max(...chunkDoc) + 1).fill(2);
    const input = { topk, queryChunks: 2, chunkDoc, docChunkCounts };
    const [expected, got] = [ts.biMatch(input), native.biMatch(input)];
    t.deepEqual([...got.docs], [...expected.docs]);
    t.deepEqual([...got.scores], [...expected.scores]);
    t.deepEqual([...got.bestChunks], [...expected.bestChunks]);
  }
});

/** A seeded random symmetric n × n matrix, entries in [-1, 1]. */
function randomSymmetric(rand: () => number, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) a[r * n + c] = a[c * n + r] = rand() * 2 - 1;
  return a;
}

nativeTest('symmetricEigen: random 200x200 and 300x300 matrices match TS (values 1e-9 relative, vectors 1e-7)', (t) => {
  const rand = prng(23);
  // Neither is a multiple of the 32-column panel the native QL rotations are applied in.
  for (const n of [200, 300]) {
    const a = randomSymmetric(rand, n);
    const copy = Float64Array.from(a);
    const expected = ts.symmetricEigen(a, n);
    const got = native.symmetricEigen(a, n);
    t.deepEqual(a, copy, 'a is only read');
    const scale = Math.max(...expected.values.map(Math.abs));
    expected.values.forEach((v, i) => {
      if (!(Math.abs(got.values[i] - v) <= 1e-9 * scale)) t.fail(`n ${n}: values[${i}] ${got.values[i]}, TS ${v}`);
    });
    expected.vectors.forEach((v, i) => {
      if (!(Math.abs(got.vectors[i] - v) <= 1e-7)) t.fail(`n ${n}: vector ${Math.floor(i / n)}[${i % n}] ${got.vectors[i]}, TS ${v}`);
    });
  }
});

nativeTest('symmetricEigen: zero matrix and repeated eigenvalues give the same values and eigenspaces as TS', (t) => {
  const zero = native.symmetricEigen(new Float64Array(16), 4);
  t.deepEqual([...zero.values], [0, 0, 0, 0]);
  t.deepEqual([...zero.vectors], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  // diag(2, 2, 2, -1, -1) in a rotated basis: eigenvectors of a repeated value are any basis of its
  // eigenspace, but the projector onto that space (the sum of v vᵀ) is unique.
  const n = 5;
  const rand = prng(5);
  const q = ts.symmetricEigen(randomSymmetric(rand, n), n).vectors;
  const spectrum = [2, 2, 2, -1, -1];
  const a = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let i = 0; i < n; i++) a[r * n + c] += q[i * n + r] * spectrum[i] * q[i * n + c];
  const got = native.symmetricEigen(a, n);
  got.values.forEach((v, i) => t.true(Math.abs(v - spectrum[i]) < 1e-9, `values[${i}] = ${v}`));
  const projector = (vectors: Float64Array, from: number, to: number) => {
    const p = new Float64Array(n * n);
    for (let i = from; i < to; i++) for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) p[r * n + c] += vectors[i * n + r] * vectors[i * n + c];
    return p;
  };
  for (const [from, to] of [
    [0, 3],
    [3, 5],
  ]) {
    const expected = projector(q, from, to);
    projector(got.vectors, from, to).forEach((x, i) => t.true(Math.abs(x - expected[i]) < 1e-9, `eigenspace ${from}..${to - 1}: entry ${i} ${x} vs ${expected[i]}`));
  }
});

/** Seeded random rows × dim in [-1, 1]. */
function randomRows(rand: () => number, rows: number, dim: number): Float32Array {
  return new Float32Array(rows * dim).map(() => rand() * 2 - 1);
}

/**
 * Native sums in float32 lanes, TS in float64: every entry within 1e-5 of Σ|a_ik b_jk| (a float32
 * sum of n terms is off by at most ~n·2⁻²⁴ of that; here a lane sums at most 4100 / 8 terms).
 */
function assertProductClose(t: import('ava').ExecutionContext, a: Float32Array, b: Float32Array, dim: number, got: Float32Array, where: string): void {
  const m = a.length / dim;
  const p = b.length / dim;
  const expected = ts.multiplyRows(a, b, dim);
  t.is(got.length, m * p, where);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < p; j++) {
      let magnitude = 0;
      for (let k = 0; k < dim; k++) magnitude += Math.abs(a[i * dim + k] * b[j * dim + k]);
      const diff = Math.abs(got[i * p + j] - expected[i * p + j]);
      if (!(diff <= 1e-5 * magnitude)) return t.fail(`${where}: out[${i}][${j}] ${got[i * p + j]}, TS ${expected[i * p + j]}`);
    }
  }
}

// m, p and dim around the kernels' blocks: 48-row tiles, 12-row panels, 3/4-row and 4-query register
// blocks, 32-query passes, 8/16 SIMD lanes, 2048-float dimension slices.
const productShapes = [
  [1, 1, 1],
  [1, 5, 3],
  [7, 1, 16],
  [5, 3, 17],
  [49, 33, 1],
  [13, 70, 100],
  [97, 35, 23],
  [50, 37, 4100],
];

nativeTest('multiplyRows: random shapes match TS within 1e-5 of Σ|a·b|, every SIMD path', async (t) => {
  await forEachSimd((level) => {
    const rand = prng(77);
    for (const [m, p, dim] of productShapes) {
      const a = randomRows(rand, m, dim);
      const b = randomRows(rand, p, dim);
      assertProductClose(t, a, b, dim, native.multiplyRows(a, b, dim), `simd=${level} ${m}x${p}x${dim}`);
    }
    t.pass();
  })();
});

nativeTest('multiplyRows: each entry is, bit for bit, the score native top-k gives the pair, every SIMD path', async (t) => {
  await forEachSimd((level) => {
    const rand = prng(78);
    for (const [m, p, dim] of productShapes) {
      const a = randomRows(rand, m, dim);
      const b = randomRows(rand, p, dim);
      const got = native.multiplyRows(a, b, dim);
      const { ids, scores } = native.cosineTopK({ matrix: b, rows: p, dim, queries: a, k: p });
      ids.forEach((j, s) => {
        const i = Math.floor(s / p);
        if (got[i * p + j] !== scores[s]) t.fail(`simd=${level} ${m}x${p}x${dim}: out[${i}][${j}] ${got[i * p + j]}, top-k ${scores[s]}`);
      });
    }
    t.pass();
  })();
});

nativeTest('multiplyRows: a gram matrix (a times itself) is symmetric and equals a times a copy of a, 1 and 2 threads', (t) => {
  const initial = addon!.threads();
  try {
    const rand = prng(79);
    // 101 rows: three tiles, the last one partial; 101² x 1283 multiply-adds are enough for 2 threads.
    for (const [m, dim] of [
      [1, 9],
      [101, 1283],
    ]) {
      const a = randomRows(rand, m, dim);
      const general = native.multiplyRows(a, Float32Array.from(a), dim);
      for (const threads of [1, 2]) {
        addon!._setThreads(threads);
        t.deepEqual(native.multiplyRows(a, a, dim), general, `${m}x${m}x${dim}, ${threads} thread(s)`);
      }
      for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) if (general[i * m + j] !== general[j * m + i]) t.fail(`out[${i}][${j}] != out[${j}][${i}]`);
      assertProductClose(t, a, a, dim, general, `gram ${m}x${dim}`);
    }
  } finally {
    addon!._setThreads(initial);
  }
});

nativeTest('multiplyRows: 1 and 2 threads give the same product; a and b are only read; NaN spreads to its row alone', (t) => {
  const initial = addon!.threads();
  try {
    const rand = prng(80);
    const [m, p, dim] = [150, 70, 1283];
    const a = randomRows(rand, m, dim);
    const b = randomRows(rand, p, dim);
    a[40 * dim + 7] = NaN;
    const [aCopy, bCopy] = [Float32Array.from(a), Float32Array.from(b)];
    addon!._setThreads(1);
    const one = native.multiplyRows(a, b, dim);
    addon!._setThreads(2);
    t.deepEqual(native.multiplyRows(a, b, dim), one);
    t.deepEqual(a, aCopy);
    t.deepEqual(b, bCopy);
    for (let i = 0; i < m; i++) for (let j = 0; j < p; j++) if (Number.isNaN(one[i * p + j]) !== (i === 40)) t.fail(`out[${i}][${j}] = ${one[i * p + j]}`);
    a[40 * dim + 7] = 0;
    assertProductClose(t, a, b, dim, native.multiplyRows(a, b, dim), `${m}x${p}x${dim}`);
  } finally {
    addon!._setThreads(initial);
  }
});

nativeTest('validation: the TS layer rejects bad arguments before the addon (same errors as TS)', (t) => {
  const ok = { matrix: new Float32Array(8), rows: 4, dim: 2, queries: new Float32Array(2), k: 2 };
  t.throws(() => native.cosineTopK({ ...ok, matrix: new Int32Array(8) as unknown as Float32Array }), { instanceOf: TypeError });
  t.throws(() => native.cosineTopK({ ...ok, k: -1 }), { instanceOf: RangeError });
  t.throws(() => native.cosineTopK({ ...ok, k: Number.MAX_SAFE_INTEGER }), { instanceOf: RangeError });
  t.throws(() => native.cosineTopK({ ...ok, rows: 5 }), { instanceOf: RangeError });
  t.throws(() => native.cosineTopK({ ...ok, queries: new Float32Array(3) }), { instanceOf: RangeError });
  t.throws(() => native.symmetricEigen(new Float32Array(4) as unknown as Float64Array, 2), { instanceOf: TypeError });
  t.throws(() => native.symmetricEigen(new Float64Array(4), 3), { instanceOf: RangeError, message: /needs 9/ });
  t.throws(() => native.symmetricEigen(Float64Array.of(1, NaN, NaN, 1), 2), { instanceOf: RangeError, message: /not finite/ });
  t.throws(() => native.multiplyRows(new Float64Array(6) as unknown as Float32Array, new Float32Array(3), 3), { instanceOf: TypeError, message: /a must be a Float32Array/ });
  t.throws(() => native.multiplyRows(new Float32Array(7), new Float32Array(3), 3), { instanceOf: RangeError, message: /a holds 7 floats/ });
  t.throws(() => native.multiplyRows(new Float32Array(6), new Float32Array(3), 0), { instanceOf: RangeError });
});

nativeTest('abuse of the raw addon: TypeError/RangeError, never a crash', async (t) => {
  const a = addon!;
  const m = new Float32Array(8),
    q = new Float32Array(2);
  t.throws(() => a.cosineTopK(new Float64Array(8) as unknown as Float32Array, 4, 2, q, 1), { instanceOf: TypeError });
  t.throws(() => a.cosineTopK(m, 4, 2, [0, 0] as unknown as Float32Array, 1), { instanceOf: TypeError });
  t.throws(() => a.cosineTopK(m, 4, 2, q, -1), { instanceOf: RangeError });
  t.throws(() => a.cosineTopK(m, 4, 2, q, 2 ** 40), { instanceOf: RangeError });
  t.throws(() => a.cosineTopK(m, 4, 2, q, 0.5), { instanceOf: RangeError });
  t.throws(() => a.cosineTopK(m, 5, 2, q, 1), { instanceOf: RangeError }, 'matrix too small');
  t.throws(() => a.cosineTopK(m, 4, 3, q, 1), { instanceOf: RangeError }, 'dimension mismatch');
  t.throws(() => a.cosineTopK(m, 4, 0, q, 1), { instanceOf: RangeError });
  t.throws(() => a.cosineTopK(m, 4, '2' as unknown as number, q, 1), { instanceOf: TypeError });
  t.throws(() => a.cosineTopKAsync(m, 4, 2, q, -1), { instanceOf: RangeError });
  t.throws(() => a.biMatch(Int32Array.of(5), Float32Array.of(1), 1, 1, Int32Array.of(0), Int32Array.of(1)), { instanceOf: RangeError });
  t.throws(() => a.biMatch(Int32Array.of(0), Float32Array.of(1), 1, 1, Int32Array.of(3), Int32Array.of(1)), { instanceOf: RangeError });
  t.throws(() => a.biMatch(Int32Array.of(0), Float32Array.of(1), 1, 1, Int32Array.of(0), Int32Array.of(0)), { instanceOf: RangeError });
  t.throws(() => a.biMatch(Int32Array.of(0), Float32Array.of(1), 2, 1, Int32Array.of(0), Int32Array.of(1)), { instanceOf: RangeError });
  t.throws(() => a.biMatch(Float32Array.of(0) as unknown as Int32Array, Float32Array.of(1), 1, 1, Int32Array.of(0), Int32Array.of(1)), { instanceOf: TypeError });
  const img = new Uint8Array(12),
    out = new Float32Array(12),
    meanStd = Float64Array.of(0, 0, 0, 1, 1, 1);
  t.throws(() => a.extractChunks(img, 2, 2, 3, Int32Array.of(1, 0), 2, 2, meanStd, out, 0), { instanceOf: RangeError }, 'box outside');
  t.throws(() => a.extractChunks(img, 2, 2, 3, Int32Array.of(0, 0), 2, 2, meanStd, out, 1), { instanceOf: RangeError }, 'out too small');
  t.throws(() => a.extractChunks(img, 3, 2, 3, Int32Array.of(0, 0), 2, 2, meanStd, out, 0), { instanceOf: RangeError }, 'image too small');
  t.throws(() => a.extractChunks(img, 2, 2, 2, Int32Array.of(0, 0), 2, 2, meanStd, out, 0), { instanceOf: RangeError }, 'channels');
  t.throws(() => a.extractChunks(img, 2, 2, 3, Int32Array.of(0, 0), 2, 2, Float64Array.of(0, 0, 0, 1, 0, 1), out, 0), { instanceOf: RangeError }, 'std 0');
  t.throws(() => a.extractChunks(new Int8Array(12) as unknown as Uint8Array, 2, 2, 3, Int32Array.of(0, 0), 2, 2, meanStd, out, 0), { instanceOf: TypeError });
  t.throws(() => a.mapFile(path.join(os.tmpdir(), 'flower-native-no-such-file'), 2 ** 32), { message: /no-such-file/ });
  t.throws(() => a.mapFile(42 as unknown as string, 2 ** 32), { instanceOf: TypeError });
  t.throws(() => a.mapFile(process.execPath, 16), { instanceOf: RangeError }, 'larger than maxLength');
  t.throws(() => a._setSimd('sse9'), { instanceOf: RangeError });
  if (!simdLevels.includes('avx512')) t.throws(() => a._setSimd('avx512'), { instanceOf: RangeError, message: /not supported/ });
  t.throws(() => a._setThreads(0), { instanceOf: RangeError });
  t.throws(() => a.symmetricEigen(new Float32Array(4) as unknown as Float64Array, 2), { instanceOf: TypeError });
  t.throws(() => a.symmetricEigen(new Float64Array(4), '2' as unknown as number), { instanceOf: TypeError });
  t.throws(() => a.symmetricEigen(new Float64Array(4), 0), { instanceOf: RangeError });
  t.throws(() => a.symmetricEigen(new Float64Array(4), 2.5), { instanceOf: RangeError });
  t.throws(() => a.symmetricEigen(new Float64Array(4), 3), { instanceOf: RangeError }, 'a too small');
  t.throws(() => a.symmetricEigen(new Float64Array(5), 2), { instanceOf: RangeError }, 'a too large');
  t.throws(() => a.symmetricEigen(new Float64Array(0), 2 ** 20), { instanceOf: RangeError }, 'n too large');
  t.throws(() => a.symmetricEigen(Float64Array.of(1, 0, 0, Infinity), 2), { instanceOf: RangeError }, 'not finite');
  t.throws(() => a.multiplyRows(new Float64Array(4) as unknown as Float32Array, new Float32Array(4), 2), { instanceOf: TypeError });
  t.throws(() => a.multiplyRows(new Float32Array(4), [0, 0] as unknown as Float32Array, 2), { instanceOf: TypeError });
  t.throws(() => a.multiplyRows(new Float32Array(4), new Float32Array(4), '2' as unknown as number), { instanceOf: TypeError });
  t.throws(() => a.multiplyRows(new Float32Array(4), new Float32Array(4), 0), { instanceOf: RangeError });
  t.throws(() => a.multiplyRows(new Float32Array(4), new Float32Array(4), 1.5), { instanceOf: RangeError });
  t.throws(() => a.multiplyRows(new Float32Array(5), new Float32Array(4), 2), { instanceOf: RangeError }, 'a not whole rows');
  t.throws(() => a.multiplyRows(new Float32Array(4), new Float32Array(3), 2), { instanceOf: RangeError }, 'b not whole rows');
  t.throws(() => a.multiplyRows(new Float32Array(2 ** 16), new Float32Array(2 ** 16), 1), { instanceOf: RangeError }, 'result too large');
  t.deepEqual(a.multiplyRows(Float32Array.of(1, 2), Float32Array.of(3, 4, 0.5, -1), 2), Float32Array.of(11, -1.5));
  // Still alive and correct afterwards.
  t.deepEqual(await a.cosineTopKAsync(Float32Array.of(1, 0, 0, 1), 2, 2, Float32Array.of(0, 1), 1), { k: 1, ids: Int32Array.of(1), scores: Float32Array.of(1) });
});

nativeTest('openMatrixFile maps the file copy-on-write: the data reads back, writes never reach the file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernels-native-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'm.bin');
  const values = Float32Array.from({ length: 3 * 64 }, (_, i) => ((i % 7) - 3) / 4); // exact dot products
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(128), Buffer.from(values.buffer)]));
  const mapped = openMatrixFile(file, 128, 3, 64);
  t.deepEqual(mapped, values);
  t.is(mapped.byteOffset, 128);
  mapped[0] = 42;
  t.is(fs.readFileSync(file).readFloatLE(128), values[0]);
  const input = { matrix: mapped, rows: 3, dim: 64, queries: values.slice(64, 128), k: 3 };
  assertTopKMatches(t, input, ts.cosineTopK(input), native.cosineTopK(input), 'mapped matrix', true);
});

nativeTest('environment: FLOWER_NATIVE_SIMD forces a lower path (never a higher one), FLOWER_NATIVE_KERNELS=ts forces TS', (t) => {
  const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/kernels/index.js');
  const info = (env: Record<string, string>) =>
    JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', `import { kernelInfo } from ${JSON.stringify(index)}; console.log(JSON.stringify(kernelInfo()))`], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ) as KernelInfo;
  for (const level of simdLevels) t.is(info({ FLOWER_NATIVE_SIMD: level }).simd, level);
  t.is(info({ FLOWER_NATIVE_SIMD: 'avx512' }).simd, simdLevels.includes('avx512') ? 'avx512' : simdLevels[0]);
  t.deepEqual(info({ FLOWER_NATIVE_KERNELS: 'ts' }), { kernels: 'ts', simd: 'none', reason: 'FLOWER_NATIVE_KERNELS=ts' });
});
