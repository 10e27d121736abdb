/**
 * `DocSearch`: ranks an index's docs against a query's encoded chunks with the mode asked for. The
 * query flow's ranker pod and `Searcher.searchChunks` (eval, straight from stored vectors) both
 * rank through it, so both see the same options, checks and timings.
 */
import { performance } from 'node:perf_hooks';
import { kernels, type Kernels } from '../kernels/index.js';
import { RANKERS } from './rankers/index.js';
import {
  DATABASE_RANK_MODE,
  DEFAULT_CHUNK_K,
  DEFAULT_RANK_MODE,
  DEFAULT_TOP,
  isMatrixIndex,
  type ChunkIndex,
  type QueryChunks,
  type Ranker,
  type Ranking,
  type RankMode,
  type SearchOptions,
} from './types.js';

export class DocSearch {
  private readonly rankers = new Map<RankMode, Ranker>();
  /** The mode a search that names none ranks with: a store without the whole matrix cannot run the learned default. */
  readonly defaultMode: RankMode;

  constructor(
    readonly index: ChunkIndex,
    private readonly impl: Kernels = kernels,
  ) {
    this.defaultMode = isMatrixIndex(index) ? DEFAULT_RANK_MODE : DATABASE_RANK_MODE;
  }

  async rank(query: QueryChunks, opts: SearchOptions = {}): Promise<Ranking> {
    const dim = this.index.dim;
    if (query.vectors.length !== query.kinds.length * dim) throw new RangeError(`query has ${query.vectors.length} values for ${query.kinds.length} chunks of dimension ${dim}`);
    const top = opts.top ?? DEFAULT_TOP;
    if (!Number.isInteger(top) || top < 1) throw new RangeError(`top must be a positive integer, got ${top}`);
    const minScore = opts.minScore ?? -Infinity;
    const start = performance.now();
    const also = new Set(opts.excludeDocs ?? []);
    const request = { top: top + also.size, chunkK: opts.chunkK ?? DEFAULT_CHUNK_K, excludeDoc: opts.excludeDoc, excludeDocs: opts.excludeDocs, excludeFrom: opts.excludeFrom };
    const { hits, topkMs } = await this.ranker(opts.mode ?? this.defaultMode).rank(query, request);
    const rankMs = performance.now() - start - topkMs;
    // Rankers that only know `excludeDoc` return the other excluded docs: they go here.
    return { hits: hits.filter((hit) => hit.score >= minScore && !also.has(hit.docId)).slice(0, top), timings: { topk: topkMs, rank: rankMs } };
  }

  private ranker(mode: RankMode): Ranker {
    let ranker = this.rankers.get(mode);
    if (!ranker) {
      const family = RANKERS[mode];
      if (!family) throw new RangeError(`unknown ranking mode '${String(mode)}' (known: ${Object.keys(RANKERS).join(', ')})`);
      ranker = family.create(this.index, this.impl);
      this.rankers.set(mode, ranker);
    }
    return ranker;
  }
}
