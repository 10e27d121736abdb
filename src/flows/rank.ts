/**
 * Ranking of indexed docs against a query's encoded chunks, shared by the query flow's ranker pod
 * and `Searcher.searchChunks` (eval ranks straight from stored vectors).
 *
 * - bimatch: cosine top-k of every query chunk over all stored chunks at once, then BiMatch
 *   (see kernels/types.ts): a score in [0, 1], 1 when every chunk on both sides has an exact match.
 * - whole: cosine similarity of the whole-image chunks alone, in [-1, 1].
 */
import { performance } from 'node:perf_hooks';
import { kernels, type Kernels } from '../kernels/index.js';
import type { Workspace } from '../store/index.js';

export type RankMode = 'bimatch' | 'whole';

export interface SearchOptions {
  /** Docs to return (default 10). */
  top?: number;
  /** Drop docs scoring below this. */
  minScore?: number;
  mode?: RankMode;
  /** Leave this doc out (leave-one-out evaluation). */
  excludeDoc?: number;
  /** Stored chunks looked up per query chunk before BiMatch groups them by doc (default: the ranker pod's top_k). */
  chunkK?: number;
}

export interface Ranking {
  /** Best first. `bestRow`: the stored chunk that matched best (its box is where the match is). */
  readonly hits: { docId: number; score: number; bestRow: number }[];
  readonly timings: { topk: number; rank: number };
}

export const DEFAULT_TOP = 10;
export const DEFAULT_CHUNK_K = 64;

export class Ranker {
  private wholeMatrix?: { matrix: Float32Array; docs: Int32Array };

  constructor(
    readonly workspace: Workspace,
    private readonly impl: Kernels = kernels,
  ) {}

  async rank(vectors: Float32Array, kinds: readonly ('window' | 'whole')[], opts: SearchOptions = {}): Promise<Ranking> {
    const ws = this.workspace;
    const dim = ws.dim;
    if (vectors.length !== kinds.length * dim) throw new RangeError(`query has ${vectors.length} values for ${kinds.length} chunks of dimension ${dim}`);
    const top = opts.top ?? DEFAULT_TOP;
    if (!Number.isInteger(top) || top < 1) throw new RangeError(`top must be a positive integer, got ${top}`);
    const minScore = opts.minScore ?? -Infinity;
    const exclude = opts.excludeDoc;
    const start = performance.now();
    let hits: Ranking['hits'];
    let topkMs: number;
    if ((opts.mode ?? 'bimatch') === 'whole') {
      const at = kinds.indexOf('whole');
      if (at < 0) throw new Error('whole-image ranking needs a whole-image query chunk (chunker `whole: true`)');
      const { matrix, docs } = this.wholeRows();
      const k = Math.min(top + (exclude === undefined ? 0 : 1), docs.length);
      const result = await this.impl.cosineTopKAsync({ matrix, rows: docs.length, dim, queries: vectors.subarray(at * dim, (at + 1) * dim), k });
      topkMs = performance.now() - start;
      const wholeRows = ws.wholeChunkRows();
      hits = [];
      for (let i = 0; i < result.k; i++) {
        const slot = result.ids[i]!;
        if (slot < 0 || docs[slot] === exclude) continue;
        hits.push({ docId: docs[slot]!, score: result.scores[i]!, bestRow: wholeRows[docs[slot]!]! });
      }
    } else {
      const chunkDoc = ws.chunkDoc();
      const counts = ws.docChunkCounts();
      const extra = exclude === undefined ? 0 : counts[exclude] ?? 0;
      const k = Math.min((opts.chunkK ?? DEFAULT_CHUNK_K) + extra, ws.chunkCount);
      const topk = await this.impl.cosineTopKAsync({ matrix: ws.matrix(), rows: ws.chunkCount, dim, queries: vectors, k });
      topkMs = performance.now() - start;
      if (exclude !== undefined) {
        for (let i = 0; i < topk.ids.length; i++) {
          if (topk.ids[i]! >= 0 && chunkDoc[topk.ids[i]!] === exclude) {
            topk.ids[i] = -1;
            topk.scores[i] = -Infinity;
          }
        }
      }
      const ranked = this.impl.biMatch({ topk, queryChunks: kinds.length, chunkDoc, docChunkCounts: counts });
      hits = Array.from(ranked.docs, (docId, i) => ({ docId, score: ranked.scores[i]!, bestRow: ranked.bestChunks[i]! }));
    }
    const rankMs = performance.now() - start - topkMs;
    return { hits: hits.filter((hit) => hit.score >= minScore).slice(0, top), timings: { topk: topkMs, rank: rankMs } };
  }

  /** The whole-image chunk of every doc, gathered once into its own matrix (docs × dim). */
  private wholeRows(): { matrix: Float32Array; docs: Int32Array } {
    if (!this.wholeMatrix) {
      const ws = this.workspace;
      const rows = ws.wholeChunkRows();
      const docs = Int32Array.from(rows.keys()).filter((doc) => rows[doc]! >= 0);
      if (docs.length === 0) throw new Error(`index at ${ws.dir} has no whole-image chunks (built with chunker \`whole: false\`)`);
      const matrix = new Float32Array(docs.length * ws.dim);
      const all = ws.matrix();
      docs.forEach((doc, i) => matrix.set(all.subarray(rows[doc]! * ws.dim, (rows[doc]! + 1) * ws.dim), i * ws.dim));
      this.wholeMatrix = { matrix, docs };
    }
    return this.wholeMatrix;
  }
}
