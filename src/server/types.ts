/**
 * What the server needs from the query side: `Searcher` (src/flows/search.ts) narrowed to the
 * members it uses, so tests can inject a small fake and the real searcher fits as is.
 */
import type { QueryResult } from '../flows/search.js';
import type { RankMode } from '../search/index.js';
import type { DocRecord } from '../store/index.js';

export type ServedDoc = Omit<DocRecord, 'firstChunk'>;

export type SearchOutcome = Pick<QueryResult, 'results' | 'timings'>;

export interface SearchBackend {
  /** `signal` aborts when the search's deadline passes or its client goes away: stop working on it. */
  search(image: Uint8Array, opts: { top: number; minScore?: number; mode?: RankMode; signal?: AbortSignal }): Promise<SearchOutcome>;
  readonly workspace: {
    readonly docCount: number;
    readonly chunkCount: number;
    doc(id: number): ServedDoc | undefined;
  };
}
