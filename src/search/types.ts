/**
 * The search layer's vocabulary: what a query brings (its encoded chunks), what a ranker returns
 * (docs with scores and their best-matching stored chunk), and the index surface rankers read
 * (`ChunkIndex`), which the local workspace and a database store both offer.
 */
import type { TopKResult } from '../kernels/index.js';
import type { ChunkKind } from '../store/index.js';
import type { RankingState } from '../store/ranking-state.js';

/** Every ranking mode, in the order `--mode` lists them. */
export const RANK_MODES = ['expanded', 'bimatch', 'whole', 'chamfer'] as const;
export type RankMode = (typeof RANK_MODES)[number];

/** The best class-level ranking measured on the fixture (README, eval), with same-photo matches first. */
export const DEFAULT_RANK_MODE: RankMode = 'expanded';
export const DEFAULT_TOP = 10;
/** Stored chunks looked up per query chunk before the chunk hits are grouped by doc. */
export const DEFAULT_CHUNK_K = 64;

/** A query's encoded chunks: `kinds.length` rows of `dim` L2-normalized values. */
export interface QueryChunks {
  readonly vectors: Float32Array;
  readonly kinds: readonly ChunkKind[];
}

export interface SearchOptions {
  /** Docs to return (default 10). */
  top?: number;
  /** Drop docs scoring below this. */
  minScore?: number;
  mode?: RankMode;
  /** Leave this doc out (leave-one-out evaluation). */
  excludeDoc?: number;
  /** More docs to leave out (eval --dedupe: the query's duplicates). */
  excludeDocs?: readonly number[];
  /**
   * 'index' (default): as if the excluded docs were not indexed at all, so rankers that learn from
   * the index (expanded) leave them out of what they learned too; 'results': only dropped from the
   * results (more like this from an indexed doc, or measuring the leak).
   */
  excludeFrom?: 'index' | 'results';
  /** Stored chunks looked up per query chunk (default: the ranker pod's top_k). */
  chunkK?: number;
}

export interface RankedHit {
  readonly docId: number;
  readonly score: number;
  /** The stored chunk that matched best (its box is where the match is). */
  readonly bestRow: number;
  /**
   * expanded only: set on the doc taken for the same photo as the query (put first whatever its
   * score): the instance-space cosine of the best chunk pair, in [-1, 1].
   */
  readonly samePhoto?: number;
}

export interface Ranking {
  /** Best first. */
  readonly hits: RankedHit[];
  readonly timings: { topk: number; rank: number };
}

/** What a ranker is asked: how many docs it must at least consider, and which doc to leave out. */
export interface RankRequest {
  readonly top: number;
  readonly chunkK: number;
  readonly excludeDoc?: number;
  readonly excludeDocs?: readonly number[];
  readonly excludeFrom?: 'index' | 'results';
}

/** One ranking mode. `topk` in the result is the time spent in nearest-neighbour search. */
export interface Ranker {
  readonly mode: RankMode;
  rank(query: QueryChunks, request: RankRequest): Promise<{ hits: RankedHit[]; topkMs: number }>;
}

/**
 * What rankers read from an index. Chunk rows and doc ids are the store's own numbers; `matrix`
 * is there only where the whole chunk matrix is at hand (the local workspace).
 */
export interface ChunkIndex {
  readonly location: string;
  readonly dim: number;
  readonly docCount: number;
  readonly chunkCount: number;
  /** For every chunk row, its doc id. */
  chunkDoc(): Int32Array;
  /** For every doc id, its chunk count. */
  docChunkCounts(): Int32Array;
  /** For every doc id, the row of its whole-image chunk (-1 when it has none). */
  wholeChunkRows(): Int32Array;
  /** Per query row, the k nearest stored chunks by cosine, best first. */
  chunkTopK(queries: Float32Array, k: number): Promise<TopKResult>;
  /** The k nearest docs by the cosine of their whole-image chunk; `ids` are doc ids. */
  wholeTopK(query: Float32Array, k: number): Promise<TopKResult>;
  /** rows × dim, for rankers that read every stored chunk; undefined when the store cannot offer it. */
  matrix?(): Float32Array;
  /** What the expanded ranking learned from this index (stored, or learned on first use); undefined when the store cannot offer it. */
  rankingState?(): RankingState;
}
