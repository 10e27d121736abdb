/**
 * `exportWorkspace`: push a local workspace's index into a Postgres store as it is (the stored
 * vectors, no re-encoding), a batch of docs per transaction with COPY. The store records the
 * workspace's model and chunking (or refuses if it holds another's); docs whose content it
 * already has are skipped, so a second export writes nothing. A store left at the HNSW threshold
 * or more gets its HNSW index at the end, as after `index --store`.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Workspace } from '../store/index.js';
import { PostgresStore } from '../store/postgres/index.js';
import { ensureHnswIndex, type PostgresIndexOptions } from './fleet.js';

export interface ExportOptions extends Pick<PostgresIndexOptions, 'hnswFromChunks' | 'hnsw' | 'onNotice'> {
  workspace: string;
  /** postgres:// URL. */
  store: string;
  /** Docs per transaction (default 256). */
  batchDocs?: number;
  onProgress?: (progress: { done: number; total: number; added: number }) => void;
}

export interface ExportSummary {
  readonly workspace: string;
  readonly store: string;
  /** Docs in the workspace. */
  readonly docs: number;
  /** Docs written (the others were in the store already). */
  readonly added: number;
  /** Chunk rows written. */
  readonly chunks: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  readonly total: { readonly docs: number; readonly chunks: number };
}

export async function exportWorkspace(opts: ExportOptions): Promise<ExportSummary> {
  const started = performance.now();
  const batchDocs = opts.batchDocs ?? 256;
  const workspace = Workspace.openForRead(path.resolve(opts.workspace));
  try {
    const { model, chunking } = workspace.manifest;
    const store = await PostgresStore.openForWrite(opts.store, { model, chunking });
    try {
      const docs = workspace.docs();
      let added = 0;
      let chunks = 0;
      for (let i = 0; i < docs.length; i += batchDocs) {
        // Each doc's rows a view of the mapped matrix: nothing is copied until the COPY encodes them.
        const batch = docs.slice(i, i + batchDocs).map((d) => workspace.docForCopy(d.id));
        const written = await store.addDocs(batch);
        added += written.length;
        chunks += written.reduce((n, d) => n + d.chunkCount, 0);
        opts.onProgress?.({ done: Math.min(i + batchDocs, docs.length), total: docs.length, added });
      }
      const seconds = (performance.now() - started) / 1000;
      const total = await store.counts();
      // As `index --store` does: a store big enough for HNSW queries gets its HNSW index (not timed in rowsPerSecond).
      await ensureHnswIndex(store, total.chunks, opts);
      return { workspace: workspace.dir, store: store.location, docs: docs.length, added, chunks, seconds, rowsPerSecond: chunks / seconds, total };
    } finally {
      await store.close();
    }
  } finally {
    workspace.close();
  }
}
