/**
 * Pure-TypeScript kernels: the fallback when the addon is missing and the oracle the native
 * kernels are tested against. Written for clarity first; arguments are already validated.
 */
import { symmetricEigen } from './eigen.js';
import { multiplyRows } from './matmul.js';
import { D_MISS, type BiMatchInput, type BiMatchResult, type Box, type Kernels, type Normalization, type RawImage, type TopKInput, type TopKResult } from './types.js';

function extractChunks(image: RawImage, boxes: readonly Box[], norm: Normalization, out: Float32Array, firstSlot: number): void {
  const { data, width, channels } = image;
  // Gray is replicated to R, G and B; RGBA drops alpha.
  const sourceChannel = channels === 1 ? [0, 0, 0] : [0, 1, 2];
  for (let i = 0; i < boxes.length; i++) {
    const box = boxes[i];
    const plane = box.width * box.height;
    const base = (firstSlot + i) * 3 * plane;
    for (let c = 0; c < 3; c++) {
      const mean = norm.mean[c];
      const std = norm.std[c];
      const planeBase = base + c * plane;
      for (let y = 0; y < box.height; y++) {
        const rowStart = ((box.y + y) * width + box.x) * channels + sourceChannel[c];
        const outRow = planeBase + y * box.width;
        for (let x = 0; x < box.width; x++) {
          out[outRow + x] = (data[rowStart + x * channels] / 255 - mean) / std;
        }
      }
    }
  }
}

/** Is (scoreA, idA) ranked before (scoreB, idB)? Higher score first, then lower id. */
function ranksBefore(scoreA: number, idA: number, scoreB: number, idB: number): boolean {
  return scoreA > scoreB || (scoreA === scoreB && idA < idB);
}

function cosineTopK({ matrix, rows, dim, queries, k }: TopKInput): TopKResult {
  const queryCount = queries.length / dim;
  const slots = Math.min(k, rows);
  const ids = new Int32Array(queryCount * slots).fill(-1);
  const scores = new Float32Array(queryCount * slots).fill(-Infinity);
  for (let q = 0; q < queryCount && slots > 0; q++) {
    const qBase = q * dim;
    const outBase = q * slots;
    let filled = 0;
    for (let row = 0; row < rows; row++) {
      const rBase = row * dim;
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += matrix[rBase + j] * queries[qBase + j];
      const score = Math.fround(dot);
      if (Number.isNaN(score)) continue;
      if (filled === slots && !ranksBefore(score, row, scores[outBase + slots - 1], ids[outBase + slots - 1])) continue;
      // Insertion into the sorted slot list (k is small next to rows).
      let pos = filled < slots ? filled++ : slots - 1;
      while (pos > 0 && ranksBefore(score, row, scores[outBase + pos - 1], ids[outBase + pos - 1])) {
        scores[outBase + pos] = scores[outBase + pos - 1];
        ids[outBase + pos] = ids[outBase + pos - 1];
        pos--;
      }
      scores[outBase + pos] = score;
      ids[outBase + pos] = row;
    }
  }
  return { k: slots, ids, scores };
}

/**
 * BiMatch, in a fixed order of operations (hits sorted by doc, then row, then query chunk; sums
 * taken in that order) so the native kernel reproduces every score bit for bit.
 */
function biMatch({ topk, queryChunks, chunkDoc, docChunkCounts }: BiMatchInput): BiMatchResult {
  const hits: { doc: number; row: number; query: number; distance: number }[] = [];
  for (let q = 0; q < queryChunks; q++) {
    for (let s = 0; s < topk.k; s++) {
      const row = topk.ids[q * topk.k + s];
      if (row < 0) continue;
      hits.push({ doc: chunkDoc[row], row, query: q, distance: 1 - topk.scores[q * topk.k + s] });
    }
  }
  hits.sort((a, b) => a.doc - b.doc || a.row - b.row || a.query - b.query);

  const ranked: { doc: number; score: number; bestChunk: number }[] = [];
  const bestPerQuery = new Float64Array(queryChunks);
  for (let start = 0; start < hits.length;) {
    const doc = hits[start].doc;
    let end = start;
    while (end < hits.length && hits[end].doc === doc) end++;

    // Match side: best distance per distinct stored chunk of this doc.
    let matchSum = 0;
    let matchHit = 0;
    let bestChunk = -1;
    let bestDistance = Infinity;
    bestPerQuery.fill(Infinity);
    for (let i = start; i < end;) {
      const row = hits[i].row;
      let rowBest = Infinity;
      for (; i < end && hits[i].row === row; i++) {
        const { query, distance } = hits[i];
        if (distance < rowBest) rowBest = distance;
        if (distance < bestPerQuery[query]) bestPerQuery[query] = distance;
      }
      matchSum += rowBest;
      matchHit++;
      if (rowBest < bestDistance) {
        bestDistance = rowBest;
        bestChunk = row;
      }
    }
    // Query side: best distance per distinct query chunk that hit this doc.
    let querySum = 0;
    let queryHit = 0;
    for (let q = 0; q < queryChunks; q++) {
      if (bestPerQuery[q] === Infinity) continue;
      querySum += bestPerQuery[q];
      queryHit++;
    }
    const matchCount = docChunkCounts[doc];
    const sMatch = 1 - (matchSum + D_MISS * (matchCount - matchHit)) / (D_MISS * matchCount);
    const sQuery = 1 - (querySum + D_MISS * (queryChunks - queryHit)) / (D_MISS * queryChunks);
    ranked.push({ doc, score: (sMatch + sQuery) / 2, bestChunk });
    start = end;
  }
  // Docs are already in ascending order, and the sort is stable: ties keep the lower doc first.
  // NaN (only from non-finite input scores) ranks last.
  const rankKey = (score: number) => (Number.isNaN(score) ? -Infinity : score);
  ranked.sort((a, b) => (rankKey(a.score) === rankKey(b.score) ? 0 : rankKey(b.score) - rankKey(a.score)));
  return {
    docs: Int32Array.from(ranked, (r) => r.doc),
    scores: Float64Array.from(ranked, (r) => r.score),
    bestChunks: Int32Array.from(ranked, (r) => r.bestChunk),
  };
}

export const tsKernels: Kernels = {
  name: 'ts',
  simd: 'none',
  extractChunks,
  cosineTopK,
  // Computes at once (no pool to hand it to); a bad argument rejects the promise instead of throwing.
  cosineTopKAsync: (input) => new Promise((resolve) => resolve(cosineTopK(input))),
  biMatch,
  symmetricEigen,
  multiplyRows,
};
