/**
 * Integrity checks of a workspace: SQLite's own quick_check, the shape of the metadata (docs own
 * contiguous row ranges that together are the committed rows), and every doc's rows against the
 * CRC-32 recorded when they were committed (docs.rows_crc32) and against what a row must be (finite,
 * unit length). A doc's checksum covers exactly its rows, so damage is reported by doc and survives
 * a compaction (which moves rows, not their bytes) unchanged.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { hasChecksumColumn } from './metadata.js';
import { NPY_DATA_OFFSET } from './npy.js';

/** A unit row's squared norm may be off by this much (float32 rounding of a normalized vector is far smaller). */
const NORM_TOLERANCE = 1e-3;
/** Rows are read in blocks of about this many bytes. */
const READ_BLOCK_BYTES = 8 << 20;

export interface DamagedDoc {
  readonly id: number;
  readonly path: string;
  readonly sha256: string;
  /** Its rows: firstRow .. firstRow + rows - 1 of chunks.npy. */
  readonly firstRow: number;
  readonly rows: number;
  /** What is wrong, e.g. "rows differ from their checksum", "row 17: NaN or infinite values", "row 18: zero vector". */
  readonly problems: readonly string[];
}

export interface RowCheck {
  readonly damagedDocs: DamagedDoc[];
  /** Docs committed by a version without checksums: their rows are checked for non-finite and non-unit values only. */
  readonly unchecksummed: number;
}

/** The CRC-32 recorded for a doc's rows at commit. */
export function rowsChecksum(vectors: Float32Array): number {
  return zlib.crc32(new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength));
}

/** SQLite's quick_check, plus what the store's layout needs of the tables: problems as lines ([] when sound). */
export function checkDatabase(db: Database.Database, committedDocs: number, committedRows: number): string[] {
  const problems = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check).filter((line) => line !== 'ok');
  if (problems.length > 0) return problems.map((line) => `SQLite quick_check: ${line}`);
  const shape = db
    .prepare(
      `SELECT count(*) AS docs, coalesce(max(id), -1) AS maxId, coalesce(sum(chunk_count), 0) AS rows,
      (SELECT count(*) FROM chunks WHERE row < ?) AS chunks FROM docs WHERE id < ?`,
    )
    .get(committedRows, committedDocs) as { docs: number; maxId: number; rows: number; chunks: number };
  if (shape.docs !== committedDocs || shape.maxId !== committedDocs - 1) problems.push(`doc ids are not 0..${committedDocs - 1} (${shape.docs} docs, highest id ${shape.maxId})`);
  if (shape.rows !== committedRows) problems.push(`the docs own ${shape.rows} rows, but ${committedRows} are committed`);
  if (shape.chunks !== committedRows) problems.push(`${shape.chunks} chunk records for ${committedRows} committed rows`);
  let expected = 0;
  for (const doc of db.prepare('SELECT id, first_chunk AS first, chunk_count AS count FROM docs WHERE id < ? ORDER BY id').iterate(committedDocs) as IterableIterator<{
    id: number;
    first: number;
    count: number;
  }>) {
    if (doc.first !== expected) {
      problems.push(`doc ${doc.id} starts at row ${doc.first}, not right after the doc before it (row ${expected})`);
      break;
    }
    expected += doc.count;
  }
  return problems;
}

/** Reads every committed doc's rows from chunks.npy (by descriptor, never mapped: a short file cannot crash the check) and checks them. */
export function checkRows(db: Database.Database, matrixFd: number, dim: number, committedDocs: number): RowCheck {
  const rowBytes = dim * 4;
  const damagedDocs: DamagedDoc[] = [];
  let unchecksummed = 0;
  let block = new Float32Array(0);
  let blockFirst = 0;
  let blockRows = 0;
  const crc = hasChecksumColumn(db) ? 'rows_crc32' : 'NULL';
  const docs = db.prepare(`SELECT id, path, sha256, first_chunk AS first, chunk_count AS count, ${crc} AS crc FROM docs WHERE id < ? ORDER BY first_chunk`).iterate(committedDocs) as IterableIterator<{
    id: number;
    path: string;
    sha256: string;
    first: number;
    count: number;
    crc: number | null;
  }>;
  for (const doc of docs) {
    if (doc.first < blockFirst || doc.first + doc.count > blockFirst + blockRows) {
      // Refill from this doc on: a block of whole docs' rows, or this one doc's if it is larger.
      const rows = Math.max(doc.count, Math.floor(READ_BLOCK_BYTES / rowBytes));
      if (block.length < rows * dim) block = new Float32Array(rows * dim);
      const bytes = new Uint8Array(block.buffer, 0, rows * rowBytes);
      let got = 0;
      while (got < bytes.length) {
        const n = fs.readSync(matrixFd, bytes, got, bytes.length - got, NPY_DATA_OFFSET + doc.first * rowBytes + got);
        if (n === 0) break;
        got += n;
      }
      blockFirst = doc.first;
      blockRows = Math.floor(got / rowBytes);
    }
    const problems: string[] = [];
    if (doc.first + doc.count > blockFirst + blockRows) {
      problems.push(`rows ${doc.first}..${doc.first + doc.count - 1} are past the end of chunks.npy`);
    } else {
      const vectors = block.subarray((doc.first - blockFirst) * dim, (doc.first - blockFirst + doc.count) * dim);
      if (doc.crc === null) unchecksummed++;
      else if (rowsChecksum(vectors) !== doc.crc) problems.push('rows differ from their checksum');
      for (let r = 0; r < doc.count; r++) {
        const problem = rowProblem(vectors.subarray(r * dim, (r + 1) * dim));
        if (problem) problems.push(`row ${doc.first + r}: ${problem}`);
      }
    }
    if (problems.length > 0) damagedDocs.push({ id: doc.id, path: doc.path, sha256: doc.sha256, firstRow: doc.first, rows: doc.count, problems });
  }
  return { damagedDocs: damagedDocs.sort((a, b) => a.id - b.id), unchecksummed };
}

function rowProblem(row: Float32Array): string | undefined {
  let norm = 0;
  for (const v of row) norm += v * v;
  if (!Number.isFinite(norm)) return 'NaN or infinite values';
  if (norm === 0) return 'zero vector';
  if (Math.abs(norm - 1) > NORM_TOLERANCE) return `not unit length (norm ${Math.sqrt(norm).toPrecision(4)})`;
  return undefined;
}

export interface IntegrityReport {
  readonly workspace: string;
  /** Nothing damaged. */
  readonly ok: boolean;
  readonly docs: number;
  readonly rows: number;
  /** Damage to the files as a whole: manifest.json, chunks.npy's header or size, index.sqlite (quick_check, the tables' shape). */
  readonly files: readonly string[];
  /** Docs whose rows are damaged: a repair drops them, and the next index run encodes their files again. */
  readonly damagedDocs: readonly DamagedDoc[];
  readonly unchecksummed: number;
}

/** SQLite's quick_check of a database that may not even open: problems as lines. */
export function quickCheckFile(file: string): string[] {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    return (db.pragma('quick_check') as { quick_check: string }[])
      .map((r) => r.quick_check)
      .filter((line) => line !== 'ok')
      .map((line) => `SQLite quick_check: ${line}`);
  } catch (err) {
    return [`${file}: ${(err as Error).message}`];
  } finally {
    db?.close();
  }
}
