/**
 * The `expanded` ranking's learned state, and the query-side math that reads it.
 *
 * Learned from the indexed chunk rows X (no labels):
 *  - PCA whitening: mean μ, covariance eigenpairs (λ, e). Class space: w(x) = l2n((x − μ) · e[:256] · λ^-0.3);
 *    instance space (same photo): v(x) = l2n((x − μ) · e[:512] · λ^-0.5).
 *  - doc vector g_d = l2n(mean of w over the doc's chunks);
 *  - database-side augmentation: D_d = l2n(g_d + Σ_{j ∈ N_d} max(g_d·g_j, 0)^1.5 g_j) over the 30 nearest
 *    other docs (31 are kept: the spare moves in when a leave-one-out drops one);
 *  - the instance matrix V = v(X).
 * At query time: g_q, its 30 nearest expanded docs, α-query expansion q' = l2n(g_q + Σ max(s_j, 0)^1.5 D_j),
 * class score D_d · q' (a cosine in [-1, 1]). Same photo (an edited copy of an indexed photo) goes
 * first: the doc whose thumbnail (./thumbnail.ts, stored per doc) correlates with the query's at
 * 0.95 or more, else the doc of the best single chunk pair in the instance space when that pair's
 * cosine is at least 0.30.
 * Measured on the 17-flowers fixture in the README (eval) and /work/scratch/ranking (the research).
 */
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../kernels/index.js';
import { RANKING_STATE_VERSION, type RankingState } from '../store/ranking-state.js';
import { normalizeRows, transpose } from './linalg.js';
import { FINE_LENGTH, THUMBNAIL_LENGTH, type PhotoThumbnails } from './thumbnail.js';

export const EXPANDED_PARAMS = {
  dims: 256,
  power: 0.3,
  instDims: 512,
  instPower: 0.5,
  neighbours: 30,
  alpha: 1.5,
  queryNeighbours: 30,
  queryAlpha: 1.5,
  /** Instance cosine at which the best chunk pair's doc is taken for the same photo and put first. */
  samePhoto: 0.3,
  /** Thumbnail correlation at which a doc is taken for the same photo (checked before the chunk pair). */
  sameThumbnail: 0.95,
  /** A chunk pair at least this strong wins over the crop check. */
  samePhotoStrong: 0.6,
  /** The crop check: a half-size window's correlation with the query's thumbnail, and the least chunk pair its doc must also have. */
  cropMatch: 0.9,
  cropChunk: 0.1,
  /** Or a window at least this strong that beats the next candidate doc's best by cropMargin. */
  cropClear: 0.8,
  cropMargin: 0.15,
  /** The centred check (before the strong chunk pair): the query's thumbnail against the central 80 % of each doc's grid, at least centreMatch and centreMargin above the next doc's, whose doc has a chunk pair of at least centreChunk. */
  centreMatch: 0.8,
  centreMargin: 0.1,
  centreChunk: 0.5,
  /** The half-area check (after it): the best of 6 × 6 windows at √½ of each doc's grid, with the same chunk pair. */
  halfMatch: 0.85,
  halfMargin: 0.15,
} as const;

/**
 * The whitening is refitted when the index has changed (docs added plus docs removed) by more than
 * this fraction of the docs it was fitted on; below it, new docs are whitened with the existing fit.
 */
export const REFIT_FRACTION = 0.2;

/** Chunk rows the covariance is estimated from at most (an even sample of larger indexes). */
const COVARIANCE_ROWS = 100_000;

/** What learning reads of an index. */
export interface StateSource {
  readonly dim: number;
  readonly modelSha256: string;
  readonly rows: number;
  matrix(): Float32Array;
  /** By doc id: sha256, first chunk row, chunk count. */
  readonly docs: readonly { sha256: string; firstChunk: number; chunkCount: number }[];
  /** Same-photo thumbnails by doc sha256, freshly taken from the files; a doc without one keeps the previous state's, else zero rows. */
  readonly thumbnails?: ReadonlyMap<string, PhotoThumbnails>;
}

export type LearnOutcome = 'current' | 'updated' | 'fitted';

/** Whether `state` was learned from exactly this index. */
export function stateMatches(state: RankingState, source: StateSource): boolean {
  return (
    state.version === RANKING_STATE_VERSION &&
    state.modelSha256 === source.modelSha256 &&
    state.dim === source.dim &&
    state.rows === source.rows &&
    state.docShas.length === source.docs.length &&
    source.docs.every((doc, i) => doc.sha256 === state.docShas[i])
  );
}

/**
 * The state for `source`: `previous` itself when it matches, else `previous`'s whitening with the
 * rest recomputed when the index changed by at most REFIT_FRACTION (docs kept reuse their vectors),
 * else a new fit. `refit` forces a new fit.
 */
export function learnRankingState(source: StateSource, impl: Kernels, previous?: RankingState, refit = false): { state: RankingState; outcome: LearnOutcome; ms: number } {
  const start = performance.now();
  if (!refit && previous && stateMatches(previous, source)) return { state: previous, outcome: 'current', ms: performance.now() - start };
  const reusable = !refit && previous && previous.version === RANKING_STATE_VERSION && previous.modelSha256 === source.modelSha256 && previous.dim === source.dim;
  if (reusable && changedDocs(previous, source) <= REFIT_FRACTION * previous.fittedDocs) {
    return { state: updateState(previous, source, impl), outcome: 'updated', ms: performance.now() - start };
  }
  return { state: fitState(source, impl, previous), outcome: 'fitted', ms: performance.now() - start };
}

/** Docs added plus docs removed since `state` was learned. */
function changedDocs(state: RankingState, source: StateSource): number {
  const before = new Set(state.docShas);
  const now = new Set(source.docs.map((doc) => doc.sha256));
  let changed = 0;
  for (const sha of now) if (!before.has(sha)) changed++;
  for (const sha of before) if (!now.has(sha)) changed++;
  return changed;
}

interface Whitening {
  readonly mean: Float32Array;
  readonly projection: Float32Array;
  readonly instProjection: Float32Array;
  readonly dims: number;
  readonly instDims: number;
}

function fitState(source: StateSource, impl: Kernels, previous?: RankingState): RankingState {
  const whitening = fitWhitening(source, impl);
  const rows = Array.from(source.docs.keys());
  return assemble(source, impl, whitening, source.docs.length, computeRows(source, impl, whitening, rows), previous);
}

/** Reuse the whitening and the vectors of the docs still indexed; compute the new docs'; redo neighbours and expansion. */
function updateState(previous: RankingState, source: StateSource, impl: Kernels): RankingState {
  const old = new Map<string, { id: number; firstRow: number; count: number }>();
  let row = 0;
  previous.docShas.forEach((sha, id) => {
    old.set(sha, { id, firstRow: row, count: previous.docChunkCounts[id] });
    row += previous.docChunkCounts[id];
  });
  const fresh = source.docs.flatMap((doc, id) => (old.get(doc.sha256)?.count === doc.chunkCount ? [] : [id]));
  const computed = computeRows(source, impl, previous, fresh);
  const docVectors = new Float32Array(source.docs.length * previous.dims);
  const instance = new Float32Array(source.rows * previous.instDims);
  source.docs.forEach((doc, id) => {
    const kept = old.get(doc.sha256);
    if (kept && kept.count === doc.chunkCount) {
      docVectors.set(previous.docVectors.subarray(kept.id * previous.dims, (kept.id + 1) * previous.dims), id * previous.dims);
      instance.set(previous.instance.subarray(kept.firstRow * previous.instDims, (kept.firstRow + kept.count) * previous.instDims), doc.firstChunk * previous.instDims);
    }
  });
  const at = new Map(fresh.map((id, i) => [id, i]));
  let freshRow = 0;
  for (const id of fresh) {
    const doc = source.docs[id];
    docVectors.set(computed.docVectors.subarray(at.get(id)! * previous.dims, (at.get(id)! + 1) * previous.dims), id * previous.dims);
    instance.set(computed.instance.subarray(freshRow * previous.instDims, (freshRow + doc.chunkCount) * previous.instDims), doc.firstChunk * previous.instDims);
    freshRow += doc.chunkCount;
  }
  return assemble(source, impl, previous, previous.fittedDocs, { docVectors, instance }, previous);
}

/** docs × length: each doc's thumbnail (`which`), fresh from `source`, else `previous`'s for the same sha256, else zeros. */
export function docThumbnails(source: StateSource, previous: RankingState | undefined, which: 'thumbnails' | 'fineThumbnails'): Float32Array {
  const length = which === 'thumbnails' ? THUMBNAIL_LENGTH : FINE_LENGTH;
  const out = new Float32Array(source.docs.length * length);
  const old = new Map<string, number>();
  if (previous && previous[which].length === previous.docShas.length * length) previous.docShas.forEach((sha, id) => old.set(sha, id));
  source.docs.forEach((doc, id) => {
    const fresh = source.thumbnails?.get(doc.sha256);
    const kept = old.get(doc.sha256);
    if (fresh) out.set(which === 'thumbnails' ? fresh.thumbnail : fresh.fine, id * length);
    else if (kept !== undefined) out.set(previous![which].subarray(kept * length, (kept + 1) * length), id * length);
  });
  return out;
}

/** Mean and covariance of the chunk rows (through the kernels' products), then its eigenpairs. */
function fitWhitening(source: StateSource, impl: Kernels): Whitening {
  const { dim } = source;
  const all = source.matrix();
  const step = Math.max(1, Math.ceil(source.rows / COVARIANCE_ROWS));
  const n = Math.ceil(source.rows / step);
  const sample = step === 1 ? all.subarray(0, source.rows * dim) : new Float32Array(n * dim);
  if (step > 1) for (let i = 0; i < n; i++) sample.set(all.subarray(i * step * dim, (i * step + 1) * dim), i * dim);
  const mean64 = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean64[j] += sample[i * dim + j];
  for (let j = 0; j < dim; j++) mean64[j] /= n;
  const columns = transpose(sample, n, dim);
  const gram = impl.multiplyRows(columns, columns, n);
  const covariance = new Float64Array(dim * dim);
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const c = (gram[a * dim + b] + gram[b * dim + a]) / (2 * n) - mean64[a] * mean64[b];
      covariance[a * dim + b] = c;
      covariance[b * dim + a] = c;
    }
  }
  const { values, vectors } = impl.symmetricEigen(covariance, dim);
  // Directions the data does not span (a small index) would be scaled without bound: leave them out.
  const usable = values.filter((v) => v > values[0] * 1e-9).length;
  const directions = (count: number, power: number) => {
    const out = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      const scale = values[i] ** -power;
      for (let j = 0; j < dim; j++) out[i * dim + j] = vectors[i * dim + j] * scale;
    }
    return out;
  };
  const dims = Math.min(EXPANDED_PARAMS.dims, usable);
  const instDims = Math.min(EXPANDED_PARAMS.instDims, usable);
  return { mean: Float32Array.from(mean64), projection: directions(dims, EXPANDED_PARAMS.power), instProjection: directions(instDims, EXPANDED_PARAMS.instPower), dims, instDims };
}

/** l2n((x − μ) · projectionᵀ) for every row of `x`. */
export function project(impl: Kernels, x: Float32Array, dim: number, mean: Float32Array, projection: Float32Array, outDim: number): Float32Array {
  const out = impl.multiplyRows(x, projection, dim);
  const offset = impl.multiplyRows(mean, projection, dim);
  for (let base = 0; base < out.length; base += outDim) for (let j = 0; j < outDim; j++) out[base + j] -= offset[j];
  return normalizeRows(out, outDim);
}

/** Doc vectors and instance rows of the docs `ids` (instance rows in the docs' order, back to back). */
function computeRows(source: StateSource, impl: Kernels, w: Whitening, ids: readonly number[]): { docVectors: Float32Array; instance: Float32Array } {
  const { dim } = source;
  const all = source.matrix();
  const rowCount = ids.reduce((sum, id) => sum + source.docs[id].chunkCount, 0);
  const chunks = new Float32Array(rowCount * dim);
  let at = 0;
  for (const id of ids) {
    const doc = source.docs[id];
    chunks.set(all.subarray(doc.firstChunk * dim, (doc.firstChunk + doc.chunkCount) * dim), at * dim);
    at += doc.chunkCount;
  }
  const whitened = project(impl, chunks, dim, w.mean, w.projection, w.dims);
  const docVectors = new Float32Array(ids.length * w.dims);
  at = 0;
  ids.forEach((id, i) => {
    const count = source.docs[id].chunkCount;
    docVectors.set(meanVector(whitened.subarray(at * w.dims, (at + count) * w.dims), w.dims), i * w.dims);
    at += count;
  });
  return { docVectors, instance: project(impl, chunks, dim, w.mean, w.instProjection, w.instDims) };
}

/** l2n of the mean of unit rows. */
export function meanVector(rows: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(dim);
  for (let base = 0; base < rows.length; base += dim) for (let j = 0; j < dim; j++) out[j] += rows[base + j];
  return normalizeRows(out, dim);
}

/** Neighbour lists and expanded vectors from the doc vectors. */
function assemble(source: StateSource, impl: Kernels, w: Whitening, fittedDocs: number, vectors: { docVectors: Float32Array; instance: Float32Array }, previous?: RankingState): RankingState {
  const docs = source.docs.length;
  const { dims } = w;
  const keep = EXPANDED_PARAMS.neighbours + 1;
  const neighbourIds = new Int32Array(docs * keep).fill(-1);
  const neighbourScores = new Float32Array(docs * keep);
  const { ids, scores, k } = impl.cosineTopK({ matrix: vectors.docVectors, rows: docs, dim: dims, queries: vectors.docVectors, k: Math.min(docs, keep + 1) });
  for (let d = 0; d < docs; d++) {
    let filled = 0;
    for (let j = d * k; j < (d + 1) * k && filled < keep; j++) {
      if (ids[j] === d || ids[j] < 0) continue;
      neighbourIds[d * keep + filled] = ids[j]!;
      neighbourScores[d * keep + filled++] = scores[j]!;
    }
  }
  const state: RankingState = {
    version: RANKING_STATE_VERSION,
    modelSha256: source.modelSha256,
    dim: source.dim,
    rows: source.rows,
    docShas: source.docs.map((doc) => doc.sha256),
    fittedDocs,
    dims,
    instDims: w.instDims,
    neighbours: keep,
    params: { ...EXPANDED_PARAMS },
    mean: w.mean,
    projection: w.projection,
    instProjection: w.instProjection,
    docVectors: vectors.docVectors,
    expanded: new Float32Array(docs * dims),
    neighbourIds,
    neighbourScores,
    instance: vectors.instance,
    docChunkCounts: Int32Array.from(source.docs, (doc) => doc.chunkCount),
    thumbnails: docThumbnails(source, previous, 'thumbnails'),
    fineThumbnails: docThumbnails(source, previous, 'fineThumbnails'),
  };
  for (let d = 0; d < docs; d++) state.expanded.set(expandDoc(state, d), d * dims);
  return state;
}

/**
 * D_d: doc d's vector plus its nearest other docs', weighted by similarity^α; the docs in `without`
 * are left out of its neighbours (the next ones move in: the stored spare, else a fresh search).
 */
export function expandDoc(state: RankingState, d: number, without?: ReadonlySet<number>): Float32Array {
  const { dims, neighbours: keep } = state;
  const docs = state.docShas.length;
  const wanted = Math.min(EXPANDED_PARAMS.neighbours, docs - 1 - (without?.size ?? 0));
  let list: { id: number; score: number }[] = [];
  for (let j = d * keep; j < (d + 1) * keep && list.length < wanted; j++) {
    const id = state.neighbourIds[j];
    if (id >= 0 && !without?.has(id)) list.push({ id, score: state.neighbourScores[j] });
  }
  if (list.length < wanted) list = nearestDocs(state, d, wanted, without);
  const g = state.docVectors;
  const out = Float32Array.from(g.subarray(d * dims, (d + 1) * dims));
  for (const { id, score } of list) {
    const weight = Math.max(score, 0) ** EXPANDED_PARAMS.alpha;
    for (let j = 0; j < dims; j++) out[j] += weight * g[id * dims + j];
  }
  return normalizeRows(out, dims);
}

/** The `count` docs nearest doc d by doc vector, d and `without` left out, best first (ties: lower id). */
function nearestDocs(state: RankingState, d: number, count: number, without?: ReadonlySet<number>): { id: number; score: number }[] {
  const { dims } = state;
  const g = state.docVectors;
  const all: { id: number; score: number }[] = [];
  for (let id = 0; id < state.docShas.length; id++) {
    if (id === d || without?.has(id)) continue;
    let dot = 0;
    for (let j = 0; j < dims; j++) dot += g[d * dims + j] * g[id * dims + j];
    all.push({ id, score: Math.fround(dot) });
  }
  return all.sort((a, b) => b.score - a.score || a.id - b.id).slice(0, count);
}

/**
 * The expanded vectors as they would be had the docs in `left` never been indexed: every doc that
 * had one of them among its neighbours is expanded again without them (leave-one-out evaluation).
 */
export function expandedWithout(state: RankingState, left: ReadonlySet<number>): Float32Array {
  if (left.size === 0) return state.expanded;
  const { dims, neighbours: keep } = state;
  const out = Float32Array.from(state.expanded);
  for (let d = 0; d < state.docShas.length; d++) {
    if (left.has(d)) continue;
    for (let j = d * keep; j < d * keep + Math.min(EXPANDED_PARAMS.neighbours, keep); j++) {
      if (left.has(state.neighbourIds[j])) {
        out.set(expandDoc(state, d, left), d * dims);
        break;
      }
    }
  }
  return out;
}
