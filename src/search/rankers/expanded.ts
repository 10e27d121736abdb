/**
 * expanded: whitened mean doc vectors with database-side augmentation and α-query expansion, the
 * same photo first: by thumbnail, else by best chunk pair (see ../expansion.ts for the recipe). The score is the class score, a cosine
 * in [-1, 1]; the doc taken for the same photo carries `samePhoto`, its instance cosine, and
 * scores the larger of the two.
 */
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../../kernels/index.js';
import type { RankingState } from '../../store/ranking-state.js';
import { EXPANDED_PARAMS, expandedWithout, meanVector, project } from '../expansion.js';
import { normalizeRows } from '../linalg.js';
import { bestCentred, bestCrop, bestHalf, type GridMatch } from '../crop-match.js';
import { THUMBNAIL_LENGTH } from '../thumbnail.js';
import type { MatrixIndex, QueryChunks, RankedHit, Ranker, RankRequest } from '../types.js';

export class ExpandedRanker implements Ranker {
  readonly mode = 'expanded';

  constructor(
    private readonly index: MatrixIndex,
    private readonly impl: Kernels,
  ) {}

  async rank(query: QueryChunks, request: RankRequest): Promise<{ hits: RankedHit[]; topkMs: number }> {
    const state = this.index.rankingState();
    const excluded = new Set([...(request.excludeDoc === undefined ? [] : [request.excludeDoc]), ...(request.excludeDocs ?? [])]);
    const expanded = request.excludeFrom === 'results' ? state.expanded : expandedWithout(state, excluded);
    const { impl } = this;
    const { dims } = state;
    const docs = state.docShas.length;
    const m = query.kinds.length;
    let topkMs = 0;
    const timed = <T>(work: () => T): T => {
      const start = performance.now();
      const out = work();
      topkMs += performance.now() - start;
      return out;
    };

    const g = meanVector(project(impl, query.vectors, state.dim, state.mean, state.projection, dims), dims);
    const near = timed(() => impl.cosineTopK({ matrix: expanded, rows: docs, dim: dims, queries: g, k: Math.min(docs, EXPANDED_PARAMS.queryNeighbours + excluded.size) }));
    const q = Float32Array.from(g);
    for (let i = 0, used = 0; i < near.k && used < EXPANDED_PARAMS.queryNeighbours; i++) {
      const id = near.ids[i];
      if (id < 0 || excluded.has(id)) continue;
      used++;
      const weight = Math.max(near.scores[i], 0) ** EXPANDED_PARAMS.queryAlpha;
      for (let j = 0; j < dims; j++) q[j] += weight * expanded[id * dims + j];
    }
    normalizeRows(q, dims);
    const ranked = timed(() => impl.cosineTopK({ matrix: expanded, rows: docs, dim: dims, queries: q, k: Math.min(docs, request.top + excluded.size + 1) }));

    const promoted = this.sameThumbnail(state, query.thumbnail, excluded, (ms) => (topkMs += ms)) ?? (await this.sameRegion(state, query, m, excluded, (ms) => (topkMs += ms)));
    const wholeRows = this.index.wholeChunkRows();
    const firstRows = firstChunkRows(this.index.docChunkCounts());
    const hits: RankedHit[] = [];
    for (let i = 0; i < ranked.k; i++) {
      const docId = ranked.ids[i];
      if (docId < 0 || excluded.has(docId) || docId === promoted?.doc) continue;
      hits.push({ docId, score: ranked.scores[i], bestRow: wholeRows[docId] >= 0 ? wholeRows[docId] : firstRows[docId] });
    }
    if (promoted) {
      let score = 0;
      for (let j = 0; j < dims; j++) score += expanded[promoted.doc * dims + j] * q[j];
      // The same photo scores at least its instance cosine, so an identical image is a 100 % match.
      hits.unshift({ docId: promoted.doc, score: Math.min(1, Math.max(Math.fround(score), promoted.score)), bestRow: promoted.row, samePhoto: promoted.score });
    }
    return { hits, topkMs };
  }

  /**
   * The doc not excluded whose thumbnail correlates best with the query's, when that correlation
   * reaches EXPANDED_PARAMS.sameThumbnail (ties: lower id); its row is its whole-image chunk.
   */
  private sameThumbnail(state: RankingState, query: Float32Array | undefined, excluded: ReadonlySet<number>, addMs: (ms: number) => void): { doc: number; row: number; score: number } | undefined {
    const docs = state.docShas.length;
    if (!query || query.length !== THUMBNAIL_LENGTH || state.thumbnails.length !== docs * THUMBNAIL_LENGTH) return undefined;
    const start = performance.now();
    const found = this.impl.cosineTopK({ matrix: state.thumbnails, rows: docs, dim: THUMBNAIL_LENGTH, queries: query, k: Math.min(docs, excluded.size + 1) });
    addMs(performance.now() - start);
    for (let i = 0; i < found.k; i++) {
      const doc = found.ids[i];
      if (doc < 0 || excluded.has(doc)) continue;
      if (found.scores[i] < EXPANDED_PARAMS.sameThumbnail) return undefined;
      const whole = this.index.wholeChunkRows()[doc];
      return { doc, row: whole >= 0 ? whole : firstChunkRows(this.index.docChunkCounts())[doc], score: Math.min(1, found.scores[i]) };
    }
    return undefined;
  }

  /**
   * The crop check's doc when it is sure (a half-size window correlating at least cropMatch, cropMargin
   * above the next candidate's, with a chunk pair of at least samePhoto); else the centred check's doc (the central 80 % of its thumbnail grid correlating at least centreMatch
   * with the query's thumbnail, centreMargin above the next doc's, with a chunk pair of at least
   * centreChunk); else the half-area check's (a window at √½ of the side, at least halfMatch and
   * halfMargin above the next doc's, the same chunk pair); else a chunk pair at least EXPANDED_PARAMS.samePhotoStrong; else a crop (a half-size window of a
   * doc's thumbnail grid correlating at least cropMatch with the query's thumbnail, whose doc also
   * has a chunk pair of at least cropChunk; or at least cropClear and cropMargin above the next
   * candidate's); else a chunk pair of at least samePhoto.
   */
  private async sameRegion(
    state: RankingState,
    query: QueryChunks,
    m: number,
    excluded: ReadonlySet<number>,
    addMs: (ms: number) => void,
  ): Promise<{ doc: number; row: number; score: number } | undefined> {
    const { best, inst } = await this.samePhoto(state, query.vectors, m, excluded, addMs);
    const counts = this.index.docChunkCounts();
    const thumb = query.thumbnail;
    const timed = (check: () => GridMatch | undefined): GridMatch | undefined => {
      const start = performance.now();
      const found = check();
      addMs(performance.now() - start);
      return found;
    };
    // A grid check's doc is the same photo when it scores at least `match`, `margin` above the next doc's, and also has a chunk pair of at least `chunk`.
    const taken = (found: GridMatch | undefined, match: number, margin: number, chunk: number) => {
      if (!found || found.score < match || found.score - found.runnerUp < margin) return undefined;
      const pair = bestPairWith(state, inst, m, counts, found.doc);
      return pair.score >= chunk ? { doc: found.doc, row: pair.row, score: Math.min(1, found.score) } : undefined;
    };
    const crop = thumb && timed(() => bestCrop(this.impl, state, thumb, excluded));
    if (thumb) {
      // A quarter crop the crop check is sure of outranks a weaker whole-picture match of another photo (a sibling shot's centre or chunks);
      // the centred and half-area checks run only when it is not.
      const early =
        taken(crop, EXPANDED_PARAMS.cropMatch, EXPANDED_PARAMS.cropMargin, EXPANDED_PARAMS.samePhoto) ??
        taken(
          timed(() => bestCentred(this.impl, state, thumb, excluded)),
          EXPANDED_PARAMS.centreMatch,
          EXPANDED_PARAMS.centreMargin,
          EXPANDED_PARAMS.centreChunk,
        ) ??
        taken(
          timed(() => bestHalf(this.impl, state, thumb, excluded)),
          EXPANDED_PARAMS.halfMatch,
          EXPANDED_PARAMS.halfMargin,
          EXPANDED_PARAMS.centreChunk,
        );
      if (early) return early;
    }
    if (best && best.score >= EXPANDED_PARAMS.samePhotoStrong) return best;
    if (crop) {
      const clear = crop.score >= EXPANDED_PARAMS.cropClear && crop.score - crop.runnerUp >= EXPANDED_PARAMS.cropMargin;
      if (crop.score >= EXPANDED_PARAMS.cropMatch || clear) {
        const pair = bestPairWith(state, inst, m, counts, crop.doc);
        if (clear || pair.score >= EXPANDED_PARAMS.cropChunk) return { doc: crop.doc, row: pair.row, score: Math.min(1, crop.score) };
      }
    }
    return best && best.score >= EXPANDED_PARAMS.samePhoto ? best : undefined;
  }

  /** The best single chunk pair in the instance space between the query and any doc not excluded, and the query's instance vectors. */
  private async samePhoto(
    state: RankingState,
    vectors: Float32Array,
    m: number,
    excluded: ReadonlySet<number>,
    addMs: (ms: number) => void,
  ): Promise<{ best?: { doc: number; row: number; score: number }; inst: Float32Array }> {
    const chunkDoc = this.index.chunkDoc();
    const counts = this.index.docChunkCounts();
    let skip = 0;
    for (const doc of excluded) skip += counts[doc] ?? 0;
    const inst = project(this.impl, vectors, state.dim, state.mean, state.instProjection, state.instDims);
    const start = performance.now();
    const found = await this.impl.cosineTopKAsync({ matrix: state.instance, rows: state.rows, dim: state.instDims, queries: inst, k: Math.min(state.rows, skip + 1) });
    addMs(performance.now() - start);
    let best: { doc: number; row: number; score: number } | undefined;
    for (let i = 0; i < m; i++) {
      for (let j = i * found.k; j < (i + 1) * found.k; j++) {
        const row = found.ids[j];
        if (row < 0 || excluded.has(chunkDoc[row])) continue;
        const score = found.scores[j];
        if (!best || score > best.score || (score === best.score && chunkDoc[row] < best.doc)) best = { doc: chunkDoc[row], row, score };
        break;
      }
    }
    return { best, inst };
  }
}

/** The best instance cosine between any query chunk and any chunk of `doc`, and that chunk's row. */
function bestPairWith(state: RankingState, inst: Float32Array, m: number, counts: Int32Array, doc: number): { row: number; score: number } {
  const first = firstChunkRows(counts)[doc];
  const d = state.instDims;
  let best = { row: first, score: -Infinity };
  for (let row = first; row < first + counts[doc]; row++) {
    for (let i = 0; i < m; i++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += inst[i * d + j] * state.instance[row * d + j];
      if (dot > best.score) best = { row, score: dot };
    }
  }
  return best;
}

function firstChunkRows(counts: Int32Array): Int32Array {
  const out = new Int32Array(counts.length);
  for (let d = 1; d < counts.length; d++) out[d] = out[d - 1] + counts[d - 1];
  return out;
}
