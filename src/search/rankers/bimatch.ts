/**
 * bimatch: the cosine top-k of every query chunk over all stored chunks at once, then BiMatch
 * (see kernels/types.ts): a score in [0, 1], 1 when every chunk on both sides has an exact match.
 */
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../../kernels/index.js';
import type { ChunkIndex, QueryChunks, RankedHit, Ranker, RankRequest } from '../types.js';

export class BiMatchRanker implements Ranker {
  readonly mode = 'bimatch';

  constructor(
    private readonly index: ChunkIndex,
    private readonly impl: Kernels,
  ) {}

  async rank(query: QueryChunks, request: RankRequest): Promise<{ hits: RankedHit[]; topkMs: number }> {
    const exclude = request.excludeDoc;
    // The excluded doc's own chunks would take slots: look up that many more.
    const extra = exclude === undefined ? 0 : this.index.docChunkCount(exclude);
    const start = performance.now();
    const { topk, chunkDoc, docChunkCounts, docIds, chunkRows } = await this.index.chunkCandidates(query.vectors, request.chunkK + extra);
    const topkMs = performance.now() - start;
    if (exclude !== undefined) {
      for (let i = 0; i < topk.ids.length; i++) {
        if (topk.ids[i] >= 0 && docIds[chunkDoc[topk.ids[i]]] === exclude) {
          topk.ids[i] = -1;
          topk.scores[i] = -Infinity;
        }
      }
    }
    const ranked = this.impl.biMatch({ topk, queryChunks: query.kinds.length, chunkDoc, docChunkCounts });
    const hits = Array.from(ranked.docs, (doc, i) => ({ docId: docIds[doc], score: ranked.scores[i], bestRow: chunkRows[ranked.bestChunks[i]] }));
    return { hits, topkMs };
  }
}
