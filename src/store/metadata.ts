/**
 * index.sqlite: doc and chunk metadata, and `committed_rows` (in table meta), the commit point of
 * the chunk matrix. This file holds the schema and the mapping between its rows and the records
 * the API hands out.
 */
import type Database from 'better-sqlite3';
import type { Box } from '../kernels/types.js';

export type ChunkKind = 'window' | 'whole';

export interface NewDoc {
  path: string;
  /** Hex SHA-256 of the file's bytes: the identity that keeps re-runs from adding duplicates. */
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  label?: string | null;
  chunks: { box: Box; kind: ChunkKind }[];
  /** chunks.length × dim, row-major, rows L2-normalized. */
  vectors: Float32Array;
}

/** A doc as every store keeps it. */
export interface StoredDoc {
  readonly id: number;
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly width: number;
  readonly height: number;
  readonly label: string | null;
  readonly chunkCount: number;
}

export interface DocRecord extends StoredDoc {
  /** Dense, 0-based, in insertion order. */
  readonly id: number;
  /** The doc's chunks are rows firstChunk .. firstChunk + chunkCount - 1 of the matrix. */
  readonly firstChunk: number;
}

export interface ChunkRecord {
  readonly row: number;
  readonly doc: number;
  readonly kind: ChunkKind;
  readonly box: Box;
}

export const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE docs (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  bytes INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  label TEXT,
  chunk_count INTEGER NOT NULL,
  first_chunk INTEGER NOT NULL,
  rows_crc32 INTEGER
);
CREATE TABLE chunks (
  row INTEGER PRIMARY KEY,
  doc INTEGER NOT NULL REFERENCES docs(id),
  kind TEXT NOT NULL CHECK (kind IN ('window', 'whole')),
  x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc);
`;

/** A docs row as both stores' tables hold it (index.sqlite's adds first_chunk). */
export interface StoredDocRow {
  id: number;
  path: string;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  label: string | null;
  chunk_count: number;
}
export interface DocRow extends StoredDocRow {
  first_chunk: number;
}
export interface ChunkRow {
  row: number;
  doc: number;
  kind: ChunkKind;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** docs.rows_crc32: the CRC-32 of a doc's rows (integrity.ts); NULL for docs committed before it existed. */
export function hasChecksumColumn(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM pragma_table_info('docs') WHERE name = 'rows_crc32'`).get() !== undefined;
}

/** A writer adds the checksum column to an index made before it (older readers ignore the column). */
export function addChecksumColumn(db: Database.Database): void {
  if (!hasChecksumColumn(db)) db.exec('ALTER TABLE docs ADD COLUMN rows_crc32 INTEGER');
}

/** Writers use WAL (readers keep reading while a batch commits); see leaveWalMode for the way out. */
export function configure(db: Database.Database, writable: boolean): void {
  if (writable) {
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives process crashes; a power cut may lose the last commits, which is
    // still consistent because rows are fsynced before their commit.
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('busy_timeout = 5000');
}

/**
 * A writer's last step: checkpoint and switch the database back to a rollback journal, so that
 * readers need neither -wal/-shm files nor write access (an index on a read-only volume opens).
 * A reader still connected keeps the file in WAL mode; that is harmless, the next close retries.
 */
export function leaveWalMode(db: Database.Database): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('busy_timeout = 0');
  try {
    db.pragma('journal_mode = DELETE');
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
  }
}

export function toStoredDoc(r: StoredDocRow): StoredDoc {
  return { id: r.id, path: r.path, sha256: r.sha256, bytes: r.bytes, width: r.width, height: r.height, label: r.label, chunkCount: r.chunk_count };
}

export function toDocRecord(r: DocRow): DocRecord {
  return { ...toStoredDoc(r), firstChunk: r.first_chunk };
}

export function toChunkRecord(r: ChunkRow): ChunkRecord {
  return { row: r.row, doc: r.doc, kind: r.kind, box: { x: r.x, y: r.y, width: r.w, height: r.h } };
}

/** A stored doc as `addDocs` (of either store) takes it again: what copying it into another store writes. */
export function toNewDoc(doc: StoredDoc, chunks: readonly { readonly kind: ChunkKind; readonly box: Box }[], vectors: Float32Array): NewDoc {
  return { path: doc.path, sha256: doc.sha256, bytes: doc.bytes, width: doc.width, height: doc.height, label: doc.label, chunks: chunks.map(({ kind, box }) => ({ kind, box })), vectors };
}

/** What both stores check of a doc before writing it: a programming error of the caller is a TypeError naming the doc. */
export function checkNewDoc(doc: NewDoc, dim: number): void {
  const where = `addDocs(${JSON.stringify(doc?.path)})`;
  if (typeof doc.path !== 'string' || doc.path === '') throw new TypeError(`${where}: path must be a non-empty string`);
  if (typeof doc.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(doc.sha256)) throw new TypeError(`${where}: sha256 must be 64 lowercase hex digits`);
  for (const key of ['bytes', 'width', 'height'] as const) {
    if (!Number.isSafeInteger(doc[key]) || doc[key] < 0) throw new TypeError(`${where}: ${key} must be a non-negative integer`);
  }
  if (!Array.isArray(doc.chunks) || doc.chunks.length === 0) throw new TypeError(`${where}: a doc needs at least one chunk`);
  for (const c of doc.chunks) {
    if (c.kind !== 'window' && c.kind !== 'whole') throw new TypeError(`${where}: chunk kind must be 'window' or 'whole', got ${JSON.stringify(c.kind)}`);
    const b = c.box;
    if (!b || ![b.x, b.y, b.width, b.height].every(Number.isSafeInteger)) throw new TypeError(`${where}: chunk boxes need integer x, y, width, height`);
  }
  if (!(doc.vectors instanceof Float32Array) || doc.vectors.length !== doc.chunks.length * dim) {
    throw new TypeError(`${where}: vectors must be a Float32Array of ${doc.chunks.length} × ${dim} values`);
  }
}
