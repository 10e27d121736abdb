/**
 * The search layer's vocabulary: what a query brings (its encoded chunks), what a ranker returns
 * (docs with scores and their best-matching stored chunk), and the index surface rankers read
 * (`ChunkIndex`), which the local workspace and a database store both offer.
 */
import { InputError } from '../errors.js';
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
  /** The query picture's same-photo thumbnail (search/thumbnail.ts), when the query is an image. */
  readonly thumbnail?: Float32Array;
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
   * score): the evidence, in [-1, 1]: the correlation of the two thumbnails, of the query's
   * thumbnail with the doc's best half-size window (a crop), or the instance-space cosine of the
   * best chunk pair, whichever took it (expanded.ts says in which order).
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
 * A query's chunk hits in a compact numbering of the chunks and docs they hit: what BiMatch reads
 * as it is (kernels.biMatch). A local index numbers them as the store does (identity maps, no copy);
 * a database store numbers only the rows it returned.
 */
export interface ChunkCandidates {
  /** Per query row, k compact chunk numbers (-1: unfilled) and their cosines, best first. */
  readonly topk: TopKResult;
  /** For every compact chunk, its compact doc. */
  readonly chunkDoc: Int32Array;
  /** For every compact doc, its chunk count in the whole index. */
  readonly docChunkCounts: Int32Array;
  /** Compact doc → the store's doc id (ascending, so ties between docs break alike in every store). */
  readonly docIds: ArrayLike<number>;
  /** Compact chunk → the store's chunk row (what `RankedHit.bestRow` reports). */
  readonly chunkRows: ArrayLike<number>;
}

/** The k nearest docs by their whole-image chunk: slot i is doc `docIds[i]` (-1: unfilled), its chunk `rows[i]`. */
export interface WholeHits {
  readonly k: number;
  readonly docIds: Int32Array;
  readonly rows: Int32Array;
  readonly scores: Float32Array;
}

/**
 * What every store offers rankers: nearest-neighbour candidates, never whole-index arrays (a
 * database store does not hold them). Doc ids and chunk rows are the store's own numbers.
 */
export interface ChunkIndex {
  readonly location: string;
  readonly dim: number;
  readonly docCount: number;
  readonly chunkCount: number;
  /** One doc's chunk count (0 for an unknown id). */
  docChunkCount(docId: number): number;
  /** Per query row, the k nearest stored chunks by cosine, best first, all query rows at once. */
  chunkCandidates(queries: Float32Array, k: number): Promise<ChunkCandidates>;
  /** The k nearest docs by the cosine of their whole-image chunk. */
  wholeTopK(query: Float32Array, k: number): Promise<WholeHits>;
}

/** An index whose whole chunk matrix is at hand (the local workspace): what chamfer, expanded and duplicates read. */
export interface MatrixIndex extends ChunkIndex {
  /** For every chunk row, its doc id. */
  chunkDoc(): Int32Array;
  /** For every doc id, its chunk count. */
  docChunkCounts(): Int32Array;
  /** For every doc id, the row of its whole-image chunk (-1 when it has none). */
  wholeChunkRows(): Int32Array;
  /** rows × dim. */
  matrix(): Float32Array;
  /** What the expanded ranking learned from this index (stored, or learned on first use). */
  rankingState(): RankingState;
}

/** The modes a store without the whole matrix (Postgres) ranks with, its default first. */
export const DATABASE_RANK_MODES = ['bimatch', 'whole'] as const satisfies readonly RankMode[];
export const DATABASE_RANK_MODE: RankMode = DATABASE_RANK_MODES[0];

export function isMatrixIndex(index: ChunkIndex): index is MatrixIndex {
  return 'matrix' in index;
}

/** The index as a MatrixIndex, or the one-line refusal naming the modes a database store ranks with. */
export function matrixIndex(index: ChunkIndex, what: string): MatrixIndex {
  if (isMatrixIndex(index)) return index;
  throw new InputError(
    index.location,
    `${what} reads the whole chunk matrix, which a database store does not hold in memory: rank with mode ${DATABASE_RANK_MODES.join(' or ')} there (default ${DATABASE_RANK_MODE}), or query a local workspace`,
  );
}
