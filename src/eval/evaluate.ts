/**
 * Leave-one-out retrieval quality of an indexed, labelled folder.
 *
 * Every labelled doc is a query; its relevant docs are the other docs of its class; the query doc
 * itself is excluded from its own results. The query chunks are the doc's STORED chunk vectors
 * (Searcher.searchChunks), not a re-encoding of the file: the query flow's front half (decode,
 * normalize, chunk, encode) is the same code with the same parameters as the index flow's, so the
 * vectors it would compute are the stored ones, and eval skips ~1360 redundant encodes.
 *
 * Rankers that return only some docs (BiMatch only scores docs hit by the chunk top-k) get the
 * rest appended as one tie at -Infinity, and the metrics take the expected value over the orders
 * of every tie (see metrics.ts), so an unreturned relevant doc counts as "somewhere down there".
 */
import { openIndex, type Searcher } from '../flows/search.js';
import { flowFile, loadFlow } from '../flows/spec.js';
import { DEFAULT_CHUNK_K, RANK_MODES, type Duplicates, type RankMode, type SearchOptions } from '../search/index.js';
import type { ChunkKind } from '../store/index.js';
import { docLabels } from './labels.js';
import { meanMetrics, queryMetrics, type QueryMetrics } from './metrics.js';

export interface EvalOptions {
  readonly workspace: string;
  /** Folder holding labels.csv; default: the labels stored with the docs at index time. */
  readonly data?: string;
  /** Query flow whose ranker settings (top_k) BiMatch uses; the model is never loaded (stored vectors). */
  readonly flow?: string;
  readonly modes?: readonly RankMode[];
  /** Results kept per query and mode, for the report (default 10). */
  readonly keep?: number;
  /** Leave the query in what the index learned (other docs' neighbour lists, expanded vectors): the leaky variant, to measure the leak. */
  readonly leaky?: boolean;
  /** Drop the query's duplicates (DEFAULT_DUPLICATE_THRESHOLD) from its candidates too, so twins do not flatter P@1. */
  readonly dedupe?: boolean;
  readonly onNotice?: (message: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface RankedDoc {
  readonly doc: number;
  readonly score: number;
  readonly relevant: boolean;
}

export interface QueryOutcome {
  readonly doc: number;
  readonly label: string;
  readonly metrics: Record<RankMode, QueryMetrics>;
  /** Docs each mode scored (the rest tie at the bottom of its ranking). */
  readonly returned: Record<RankMode, number>;
  /** The first `keep` results of each mode. */
  readonly top: Record<RankMode, RankedDoc[]>;
}

export interface ClassMetrics {
  readonly label: string;
  readonly queries: number;
  readonly metrics: Record<RankMode, QueryMetrics>;
}

export interface EvalResult {
  readonly workspace: string;
  readonly docs: number;
  readonly chunks: number;
  readonly queries: number;
  /** Stored chunks BiMatch looks up per query chunk: the query flow's ranker `top_k`. */
  readonly chunkK: number;
  /** Docs without a label: not used as queries, never relevant, still ranked. */
  readonly unlabelled: number;
  readonly modes: readonly RankMode[];
  /** Means over all queries. */
  readonly overall: Record<RankMode, QueryMetrics>;
  /** Mean number of docs each mode scored per query (BiMatch: those hit by the chunk top-k). */
  readonly meanReturned: Record<RankMode, number>;
  /** In order of each class's first doc. */
  readonly classes: readonly ClassMetrics[];
  readonly outcomes: readonly QueryOutcome[];
  /** Path and label of every doc id, for the report. */
  readonly docPaths: readonly string[];
  readonly docLabels: readonly (string | null)[];
  /** Near-identical pairs in the index (whole-image cosine ≥ the threshold), reported whether or not --dedupe drops them. */
  readonly duplicates: Duplicates;
  readonly dedupe: boolean;
  readonly leaky: boolean;
  readonly seconds: number;
}

export async function evaluate(options: EvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const modes = options.modes ?? RANK_MODES;
  const keep = options.keep ?? 10;
  const chunkK = await flowChunkK(options.flow);
  const searcher = await openIndex(options.workspace, { flow: options.flow, onNotice: options.onNotice });
  try {
    const ws = searcher.workspace;
    const docs = ws.docs();
    const labels = docLabels(docs, options.data);
    const queries = docs.filter((doc) => labels[doc.id] !== null);
    if (queries.length === 0) {
      throw new Error(`${options.workspace}: no indexed doc has a class label; pass --data <folder with labels.csv>`);
    }
    const kinds = new Array<ChunkKind>(ws.chunkCount).fill('window');
    for (const row of ws.wholeChunkRows()) if (row >= 0) kinds[row] = 'whole';
    const matrix = ws.matrix();
    const duplicates = searcher.duplicates();
    const twins = new Map<number, number[]>();
    for (const group of duplicates.groups)
      for (const doc of group)
        twins.set(
          doc,
          group.filter((other) => other !== doc),
        );
    const excludeFrom = options.leaky ? 'results' : 'index';

    const outcomes: QueryOutcome[] = [];
    for (const query of queries) {
      const label = labels[query.id]!;
      const rows = { start: query.firstChunk, end: query.firstChunk + query.chunkCount };
      const metrics = {} as Record<RankMode, QueryMetrics>;
      const top = {} as Record<RankMode, RankedDoc[]>;
      const returned = {} as Record<RankMode, number>;
      for (const mode of modes) {
        const dropped = options.dedupe ? (twins.get(query.id) ?? []) : [];
        const scored = await searchStored(searcher, matrix, kinds, rows, { excludeDoc: query.id, excludeDocs: dropped, excludeFrom, mode, top: docs.length, chunkK });
        const ranking = completeRanking(scored, docs.length, query.id, (doc) => labels[doc] === label, dropped);
        metrics[mode] = queryMetrics(ranking);
        returned[mode] = scored.length;
        top[mode] = ranking.slice(0, keep);
      }
      outcomes.push({ doc: query.id, label, metrics, returned, top });
      options.onProgress?.(outcomes.length, queries.length);
    }

    const classNames = [...new Set(queries.map((doc) => labels[doc.id]!))];
    const byMode = (subset: QueryOutcome[]) => Object.fromEntries(modes.map((mode) => [mode, meanMetrics(subset.map((o) => o.metrics[mode]))])) as Record<RankMode, QueryMetrics>;
    return {
      workspace: options.workspace,
      docs: docs.length,
      chunks: ws.chunkCount,
      queries: outcomes.length,
      chunkK,
      unlabelled: docs.length - queries.length,
      modes,
      overall: byMode(outcomes),
      meanReturned: Object.fromEntries(modes.map((mode) => [mode, outcomes.reduce((sum, o) => sum + o.returned[mode], 0) / outcomes.length])) as Record<RankMode, number>,
      classes: classNames.map((label) => {
        const subset = outcomes.filter((o) => o.label === label);
        return { label, queries: subset.length, metrics: byMode(subset) };
      }),
      outcomes,
      docPaths: docs.map((doc) => doc.path),
      docLabels: labels,
      duplicates,
      dedupe: options.dedupe ?? false,
      leaky: options.leaky ?? false,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await searcher.close();
  }
}

/** The chunk top-k of the query flow's ranker pod, so eval ranks as `query` with that flow would. */
async function flowChunkK(flow?: string): Promise<number> {
  const spec = await loadFlow(flowFile('query', flow));
  const topK = spec.pods.find((pod) => pod.uses === 'ranker')?.params.top_k;
  return typeof topK === 'number' ? topK : DEFAULT_CHUNK_K;
}

interface Scored {
  readonly doc: number;
  readonly score: number;
}

/**
 * Rank with the doc's stored chunks through the product's own query path. A same-photo hit is first
 * whatever its score: it ranks as +Infinity here.
 */
async function searchStored(searcher: Searcher, matrix: Float32Array, kinds: readonly ChunkKind[], rows: { start: number; end: number }, opts: SearchOptions): Promise<Scored[]> {
  const dim = searcher.workspace.dim;
  // A copy: the stored matrix may be a read-only mapping, and the search may transfer its input.
  const vectors = matrix.slice(rows.start * dim, rows.end * dim);
  // The query doc's own thumbnail: the picture that query would be (the same-photo stage sees it as a real query does).
  const result = await searcher.searchChunks(vectors, kinds.slice(rows.start, rows.end), opts, opts.excludeDoc === undefined ? undefined : searcher.storedThumbnail(opts.excludeDoc));
  return result.results.map((r) => ({ doc: r.docId, score: r.samePhoto === undefined ? r.score : Infinity }));
}

/**
 * Every doc but the query, best first: the ranker's docs in its order, then the ones it did not
 * return as a tie at -Infinity (in doc order; the metrics average over the tie's orders anyway).
 */
export function completeRanking(scored: readonly Scored[], docCount: number, queryDoc: number, isRelevant: (doc: number) => boolean, dropped: readonly number[] = []): RankedDoc[] {
  const ranking: RankedDoc[] = [];
  const seen = new Uint8Array(docCount);
  seen[queryDoc] = 1;
  for (const doc of dropped) seen[doc] = 1;
  for (const { doc, score } of scored) {
    if (doc === queryDoc || dropped.includes(doc)) throw new Error(`ranker returned doc ${doc} although it was excluded`);
    if (seen[doc]) throw new Error(`ranker returned doc ${doc} twice`);
    seen[doc] = 1;
    ranking.push({ doc, score, relevant: isRelevant(doc) });
  }
  for (let doc = 0; doc < docCount; doc++) if (!seen[doc]) ranking.push({ doc, score: -Infinity, relevant: isRelevant(doc) });
  return ranking;
}
