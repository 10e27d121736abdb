/** whole: the cosine similarity of the whole-image chunks alone, in [-1, 1]. */
import { performance } from 'node:perf_hooks';
import type { ChunkIndex, QueryChunks, RankedHit, Ranker, RankRequest } from '../types.js';

export class WholeRanker implements Ranker {
  readonly mode = 'whole';

  constructor(private readonly index: ChunkIndex) {}

  async rank(query: QueryChunks, request: RankRequest): Promise<{ hits: RankedHit[]; topkMs: number }> {
    const at = query.kinds.indexOf('whole');
    if (at < 0) throw new Error('whole-image ranking needs a whole-image query chunk (chunker `whole: true`)');
    const dim = this.index.dim;
    const start = performance.now();
    const result = await this.index.wholeTopK(query.vectors.subarray(at * dim, (at + 1) * dim), request.top + (request.excludeDoc === undefined ? 0 : 1));
    const topkMs = performance.now() - start;
    const hits: RankedHit[] = [];
    for (let i = 0; i < result.k; i++) {
      const docId = result.docIds[i];
      if (docId < 0 || docId === request.excludeDoc) continue;
      hits.push({ docId, score: result.scores[i], bestRow: result.rows[i] });
    }
    return { hits, topkMs };
  }
}
