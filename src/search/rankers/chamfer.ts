/**
 * chamfer: symmetric mean-of-max cosine over window chunks: the mean over query windows of their
 * best cosine in the doc, averaged with the mean over the doc's windows of their best cosine in the
 * query. Unlike BiMatch it scores every doc from the full similarity (top-k with k = rows), so it
 * needs the whole chunk matrix and shows what BiMatch's top-k cut-off costs.
 */
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../../kernels/index.js';
import type { MatrixIndex, QueryChunks, RankedHit, Ranker, RankRequest } from '../types.js';

export class ChamferRanker implements Ranker {
  readonly mode = 'chamfer';
  private layout?: { isWindow: Uint8Array; docWindows: Int32Array };

  constructor(
    private readonly index: MatrixIndex,
    private readonly impl: Kernels,
  ) {}

  // Synchronous work behind the interface's Promise: it needs the whole local matrix, never a remote one.
  rank(query: QueryChunks, request: RankRequest): Promise<{ hits: RankedHit[]; topkMs: number }> {
    const { index } = this;
    const { isWindow, docWindows } = this.windowLayout();
    const dim = index.dim;
    const rows = index.chunkCount;
    const chunkDoc = index.chunkDoc();
    const windows: number[] = [];
    query.kinds.forEach((kind, i) => kind === 'window' && windows.push(i));
    if (windows.length === 0) return Promise.resolve({ hits: [], topkMs: 0 });
    const queries = new Float32Array(windows.length * dim);
    windows.forEach((row, i) => queries.set(query.vectors.subarray(row * dim, (row + 1) * dim), i * dim));
    const start = performance.now();
    const { ids, scores, k } = this.impl.cosineTopK({ matrix: index.matrix(), rows, dim, queries, k: rows });
    const topkMs = performance.now() - start;

    const querySide = new Float64Array(index.docCount); // Σ over query windows of the best cosine in each doc
    const lastQuery = new Int32Array(index.docCount).fill(-1);
    const rowBest = new Float64Array(rows).fill(-Infinity); // best cosine of each stored window in the query
    for (let q = 0; q < windows.length; q++) {
      for (let j = q * k; j < (q + 1) * k; j++) {
        const row = ids[j];
        if (row < 0 || !isWindow[row]) continue;
        const score = scores[j];
        const doc = chunkDoc[row];
        if (lastQuery[doc] !== q) {
          lastQuery[doc] = q; // rows come best first: the first hit of a doc is its max
          querySide[doc] += score;
        }
        if (score > rowBest[row]) rowBest[row] = score;
      }
    }
    const docSide = new Float64Array(index.docCount);
    const bestRow = new Int32Array(index.docCount).fill(-1);
    for (let row = 0; row < rows; row++) {
      if (!isWindow[row]) continue;
      const doc = chunkDoc[row];
      docSide[doc] += rowBest[row];
      if (bestRow[doc] < 0 || rowBest[row] > rowBest[bestRow[doc]]) bestRow[doc] = row;
    }

    const hits: RankedHit[] = [];
    for (let doc = 0; doc < index.docCount; doc++) {
      if (doc === request.excludeDoc || docWindows[doc] === 0) continue;
      const score = (querySide[doc] / windows.length + docSide[doc] / docWindows[doc]) / 2;
      if (Number.isFinite(score)) hits.push({ docId: doc, score, bestRow: bestRow[doc] });
    }
    return Promise.resolve({ hits: hits.sort((a, b) => b.score - a.score || a.docId - b.docId), topkMs });
  }

  private windowLayout(): { isWindow: Uint8Array; docWindows: Int32Array } {
    if (!this.layout) {
      const whole = this.index.wholeChunkRows();
      const isWindow = new Uint8Array(this.index.chunkCount).fill(1);
      for (const row of whole) if (row >= 0) isWindow[row] = 0;
      const docWindows = Int32Array.from(this.index.docChunkCounts(), (count, doc) => count - (whole[doc] >= 0 ? 1 : 0));
      this.layout = { isWindow, docWindows };
    }
    return this.layout;
  }
}
