/**
 * The index in PostgreSQL + pgvector: what many machines share when one is not enough (the local
 * workspace stays the embedded default). Tables and migrations: schema.ts.
 *
 *   const store = await PostgresStore.openForWrite(url, { model, chunking });   // creates / upgrades / checks identity
 *   await store.addDocs(docs);            // one job: one transaction, chunks by binary COPY, idempotent by sha256
 *   const hits = await store.topK(queries, 64, { mode: 'hnsw', efSearch: 100 });  // all query rows, one round trip
 *   kernels.biMatch({ topk: hits.topk, queryChunks, chunkDoc: hits.chunkDoc, docChunkCounts: hits.docChunkCounts });
 *   await store.docs(ids);                // path, label, chunk count…
 *   await store.reconcile(listing);       // moves, deletions, what is left to index
 *   await store.buildHnswIndex({ maintenanceWorkMem: '1GB' });
 *   await store.close();
 *
 * - openForWrite(url, { model, chunking, vectorType? }) / openForRead(url): a pg Pool on the URL.
 *   A server that cannot be reached, a refused role or password, a missing database, or pgvector
 *   missing (or not creatable by this role) is a one-line StoreUnavailableError; a store of another
 *   model or chunking an IncompatibleIndexError (as locally), as is a schema newer than this code;
 *   an empty database opened for reading a NoIndexError.
 * - topK(queries, k, { mode: 'exact' | 'hnsw', efSearch?, wholeOnly? }) → ChunkHits: per query row
 *   the k nearest chunks by inner product (cosine: vectors are L2-normalized), in a compact local
 *   numbering of the chunks and docs hit (chunkIds / docIds map back) that feeds kernels.biMatch.
 *   'exact': one scan scores every query (ties by lower chunk id: the same top-k as the kernels'
 *   cosineTopK); 'hnsw': the HNSW index, ef_search ≥ k (whole-image search has an index of its own).
 * - docs(ids), docChunks(docIds, { vectors? }), counts(), deleteDocs(ids), reconcile(files, { keepMissing? }),
 *   buildHnswIndex / dropHnswIndex / hasHnswIndex, close().
 * Doc and chunk ids are the store's own (bigint identities, returned as numbers).
 */
export { PostgresStore } from './store.js';
export type { ChunkHits, HnswOptions, ListedFile, OpenPostgresForWriteOptions, OpenPostgresOptions, PgChunkRecord, PgDocRecord, Reconciliation, TopKOptions } from './store.js';
export { SCHEMA, SCHEMA_VERSION, type StoreIdentity, type VectorType } from './schema.js';
export { redactUrl, type PoolOptions } from './connection.js';
