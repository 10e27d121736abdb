/**
 * A PostgreSQL + pgvector store as a `ChunkIndex`, and the doc list a searcher shows of it.
 *
 * Nearest-neighbour search is the store's: all query chunks in one round trip, exact (one scan
 * scoring every query) below EXACT_BELOW_CHUNKS chunks, when no HNSW index is built, or when asked
 * (`exact`); the HNSW index with ef_search = efSearch above. The ranking itself (BiMatch, whole)
 * runs here in the kernels, on the compact candidates, as for a local workspace.
 *
 * The doc list (path, label, chunk count) is cached in memory; `refresh()` probes the store (one
 * scan of the docs table, not the chunks) and reloads the list only when a doc was added, removed or
 * moved, so a long-running server sees what workers add.
 */
import { NoIndexError } from '../errors.js';
import type { Box } from '../kernels/index.js';
import type { ChunkKind } from '../store/index.js';
import type { PgDocRecord, PostgresStore } from '../store/postgres/index.js';
import type { ChunkCandidates, ChunkIndex, WholeHits } from './types.js';

/**
 * Below this many chunks the search is exact (the local index's results, to the last digit) at a
 * cost a user still does not wait on: 8346 fixture chunks, exact p50 130-200 ms vs HNSW ef_search
 * 100 45-95 ms (recall@64 0.993-0.996) on a loaded 2-core machine (bench scale-out-query).
 */
export const EXACT_BELOW_CHUNKS = 20_000;
/** HNSW candidate list size: recall@64 of the chunk top-k against exact 0.993-0.996 on the fixture (64: 0.985-0.990, 200: 0.999). */
export const DEFAULT_EF_SEARCH = 100;

export interface PostgresChunkIndexOptions {
  /** Exact search whatever the store's size (default: exact below EXACT_BELOW_CHUNKS chunks or without an HNSW index). */
  exact?: boolean;
  /** HNSW ef_search (default DEFAULT_EF_SEARCH; raised to k when smaller). */
  efSearch?: number;
}

export class PostgresChunkIndex implements ChunkIndex {
  private byId = new Map<number, PgDocRecord>();
  private list: PgDocRecord[] = [];
  private counts = { docs: 0, chunks: 0 };
  private mark?: string;
  private hnsw = false;
  private refreshing?: Promise<void>;

  private constructor(
    readonly store: PostgresStore,
    private readonly opts: PostgresChunkIndexOptions,
  ) {}

  /** The index over an open store, its doc list loaded; an empty store is a NoIndexError (as an empty workspace). */
  static async open(store: PostgresStore, opts: PostgresChunkIndexOptions = {}): Promise<PostgresChunkIndex> {
    const index = new PostgresChunkIndex(store, opts);
    await index.refresh();
    if (index.docCount === 0) throw new NoIndexError(store.location, `the store at ${store.location} has no indexed images yet: run \`flower-native index --store ${store.location}\``);
    return index;
  }

  get location(): string {
    return this.store.location;
  }
  /** Where the index is, as the CLI prints it (the URL, password masked). */
  get dir(): string {
    return this.store.location;
  }
  get dim(): number {
    return this.store.dim;
  }
  get docCount(): number {
    return this.counts.docs;
  }
  get chunkCount(): number {
    return this.counts.chunks;
  }
  /** How the next search runs. */
  get searchMode(): 'exact' | 'hnsw' {
    return this.opts.exact || !this.hnsw || this.counts.chunks < EXACT_BELOW_CHUNKS ? 'exact' : 'hnsw';
  }

  doc(id: number): PgDocRecord | undefined {
    return this.byId.get(id);
  }
  docs(): readonly PgDocRecord[] {
    return this.list;
  }
  docChunkCount(docId: number): number {
    return this.byId.get(docId)?.chunkCount ?? 0;
  }

  /** Catch up with the store: one probe, the doc list reloaded only when it changed. Concurrent callers share one refresh. */
  refresh(): Promise<void> {
    this.refreshing ??= this.catchUp().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async catchUp(): Promise<void> {
    const [probe, hnsw] = await Promise.all([this.store.changeProbe(), this.store.hasHnswIndex()]);
    this.hnsw = hnsw;
    if (probe.mark === this.mark) return;
    const list = await this.store.listDocs();
    this.list = list;
    this.byId = new Map(list.map((doc) => [doc.id, doc]));
    this.counts = { docs: list.length, chunks: list.reduce((sum, doc) => sum + doc.chunkCount, 0) };
    this.mark = probe.mark;
  }

  async chunkCandidates(queries: Float32Array, k: number): Promise<ChunkCandidates> {
    const hits = await this.store.topK(queries, k, { mode: this.searchMode, efSearch: this.opts.efSearch ?? DEFAULT_EF_SEARCH });
    return { topk: hits.topk, chunkDoc: hits.chunkDoc, docChunkCounts: hits.docChunkCounts, docIds: hits.docIds, chunkRows: hits.chunkIds };
  }

  async wholeTopK(query: Float32Array, k: number): Promise<WholeHits> {
    const hits = await this.store.topK(query, k, { mode: this.searchMode, efSearch: this.opts.efSearch ?? DEFAULT_EF_SEARCH, wholeOnly: true });
    const { ids, scores } = hits.topk;
    const docIds = ids.map((chunk) => (chunk < 0 ? -1 : hits.docIds[hits.chunkDoc[chunk]]));
    const rows = ids.map((chunk) => (chunk < 0 ? -1 : hits.chunkIds[chunk]));
    return { k, docIds, rows, scores };
  }

  /** The boxes of these chunks (by chunk id) of these docs, in one query. */
  async chunkBoxes(docIds: readonly number[], chunkIds: readonly number[]): Promise<Box[]> {
    const byId = new Map((await this.store.docChunks([...new Set(docIds)])).map((chunk) => [chunk.id, chunk.box]));
    return chunkIds.map((id) => {
      const box = byId.get(id);
      if (!box) throw new Error(`chunk ${id} left the store at ${this.location} during the search`);
      return box;
    });
  }

  /** A doc's stored chunk vectors (rows, in the chunker's order) and their kinds. */
  async storedChunks(docId: number): Promise<{ vectors: Float32Array; kinds: ChunkKind[] }> {
    const chunks = await this.store.docChunks([docId], { vectors: true });
    const vectors = new Float32Array(chunks.length * this.dim);
    chunks.forEach((chunk, i) => vectors.set(chunk.vector!, i * this.dim));
    return { vectors, kinds: chunks.map((chunk) => chunk.kind) };
  }
}
