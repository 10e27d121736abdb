/**
 * The persistent index: a workspace directory holding
 *  - manifest.json  what built it (format version, model, chunking parameters) and a count summary (manifest.ts);
 *  - chunks.npy     every chunk vector, one float32 L2-normalized row each (npy.ts);
 *  - index.sqlite   doc and chunk metadata, and `committed_rows`, the commit point (metadata.ts);
 *  - sources.json   the model and data folders it was built from (sources.ts);
 *  - .lock          the single-writer lock (lock.ts).
 *
 * Crash safety: addDocs appends rows past the committed ones, fsyncs them, then commits the
 * metadata (and the new row count) in one SQLite transaction. Rows past the committed count are
 * invisible to readers and cut off by the next writer, so a kill -9 at any moment leaves a
 * consistent index. Rebuilds are staged and swapped in when finished (swap.ts); one writer at a
 * time (lock.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { IncompatibleIndexError, NoIndexError } from '../errors.js';
import { openMatrixFile } from '../kernels/index.js';
import { NPY_DATA_OFFSET, npyHeader, readMatrixHeader } from './npy.js';
import { removeIfExists, writeFileAtomic } from '../util/files.js';
import { acquireWriteLock, tryWriteLock } from './lock.js';
import {
  canonicalJson, checkModelIdentity, DB_FILE, FORMAT_VERSION, MANIFEST_FILE, MATRIX_FILE,
  readManifest, type ModelIdentity, type WorkspaceManifest,
} from './manifest.js';
import { configure, leaveWalMode, SCHEMA, toChunkRecord, toDocRecord, type ChunkRecord, type ChunkRow, type DocRecord, type DocRow, type NewDoc } from './metadata.js';
import { writeSources, type WorkspaceSources } from './sources.js';
import { completeRebuild, READY_MARK, settleStaging, STAGING_DIR } from './swap.js';

export interface OpenForWriteOptions {
  model: ModelIdentity;
  chunking: Record<string, unknown>;
  /** Start over: the new index replaces the old one only once it is complete (on close). */
  rebuild?: boolean;
  /** Recorded in sources.json when the writer closes (not when it aborts). */
  sources?: WorkspaceSources;
}

export class Workspace {
  readonly dir: string;
  readonly dim: number;
  private readonly root: string;
  private readonly db: Database.Database;
  private readonly writable: boolean;
  private readonly staged: boolean;
  private manifestData: WorkspaceManifest;
  private committedRows: number;
  private committedDocs: number;
  private matrixFd: number | undefined;
  private releaseLock: (() => void) | undefined;
  private sources: WorkspaceSources | undefined;
  private closed = false;
  private statements: Partial<Record<'hasDoc' | 'insertDoc' | 'insertChunk' | 'setRows' | 'chunk', Database.Statement>> = {};
  private cache: { matrix?: Float32Array; docs?: DocRecord[]; chunkDoc?: Int32Array; counts?: Int32Array; whole?: Int32Array } = {};

  private constructor(args: { dir: string; root: string; db: Database.Database; manifest: WorkspaceManifest; writable: boolean; staged: boolean; releaseLock?: () => void }) {
    this.dir = args.dir;
    this.root = args.root;
    this.db = args.db;
    this.manifestData = args.manifest;
    this.dim = args.manifest.model.dim;
    this.writable = args.writable;
    this.staged = args.staged;
    this.releaseLock = args.releaseLock;
    // One statement, one snapshot: a concurrent writer cannot slip a commit between the two counts.
    const snap = this.db.prepare(`SELECT (SELECT value FROM meta WHERE key = 'committed_rows') AS rows, (SELECT count(*) FROM docs) AS docs`).get() as { rows: number; docs: number };
    this.committedRows = snap.rows;
    this.committedDocs = snap.docs;
  }

  /** Open (creating or repairing as needed) a workspace to add documents to. */
  static openForWrite(dir: string, opts: OpenForWriteOptions): Workspace {
    dir = path.resolve(dir);
    checkModelIdentity(opts.model);
    fs.mkdirSync(dir, { recursive: true });
    const releaseLock = acquireWriteLock(dir);
    try {
      settleStaging(dir);
      const hasIndex = fs.existsSync(path.join(dir, MANIFEST_FILE));
      const staging = path.join(dir, STAGING_DIR);
      if (opts.rebuild && hasIndex) {
        fs.mkdirSync(staging);
        return Workspace.create(dir, staging, opts, releaseLock);
      }
      if (!hasIndex || opts.rebuild) return Workspace.create(dir, dir, opts, releaseLock);
      const ws = Workspace.openExisting(dir, dir, true, releaseLock);
      try {
        ws.assertCompatible(opts);
        ws.repair();
      } catch (err) {
        ws.dispose();
        throw err;
      }
      ws.sources = opts.sources;
      return ws;
    } catch (err) {
      releaseLock();
      throw err;
    }
  }

  /** Open an existing, non-empty index for queries. Sees the index as committed at open time. */
  static openForRead(dir: string): Workspace {
    dir = path.resolve(dir);
    Workspace.settleStagingForRead(dir);
    if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) {
      throw new NoIndexError(dir, `no index at ${dir}: run \`flower-native index --workspace ${dir}\` first`);
    }
    const ws = Workspace.openExisting(dir, dir, false);
    if (ws.committedDocs === 0) {
      ws.dispose();
      throw new NoIndexError(dir, `index at ${dir} is empty: no image has been indexed yet (run \`flower-native index\` with a folder of images)`);
    }
    return ws;
  }

  /**
   * What a killed writer left in the staging directory is settled by the first opener that can take
   * the lock, a reader too (a read-only volume has no writer to fear: nothing to do). A live
   * writer's ready rebuild is being swapped in right now: wait for that, briefly.
   */
  private static settleStagingForRead(dir: string): void {
    const staging = path.join(dir, STAGING_DIR);
    const deadline = Date.now() + SWAP_WAIT_MS;
    while (fs.existsSync(staging)) {
      let release: (() => void) | undefined;
      try {
        release = tryWriteLock(dir);
      } catch {
        return;
      }
      if (release) {
        try {
          settleStaging(dir);
        } finally {
          release();
        }
        return;
      }
      if (!fs.existsSync(path.join(staging, READY_MARK)) || Date.now() > deadline) return;
      sleepSync(20);
    }
  }

  /** Throws IncompatibleIndexError naming every difference between the index and this run. */
  assertCompatible(expected: { model: Pick<ModelIdentity, 'sha256'> & Partial<ModelIdentity>; chunking: Record<string, unknown> }): void {
    const have = this.manifestData;
    const differences: string[] = [];
    if (have.model.sha256 !== expected.model.sha256) {
      differences.push(`model sha256: the index was built with ${have.model.sha256} (${have.model.name}), this run uses ${expected.model.sha256}${expected.model.name ? ` (${expected.model.name})` : ''}`);
    } else if (expected.model.dim !== undefined && have.model.dim !== expected.model.dim) {
      differences.push(`embedding size: the index holds ${have.model.dim}-d vectors, this run makes ${expected.model.dim}-d`);
    }
    if (canonicalJson(have.chunking) !== canonicalJson(expected.chunking)) {
      differences.push(`chunking params: the index used ${canonicalJson(have.chunking)}, this run uses ${canonicalJson(expected.chunking)}`);
    }
    if (differences.length > 0) throw new IncompatibleIndexError(this.dir, differences);
  }

  get docCount(): number {
    return this.committedDocs;
  }

  get chunkCount(): number {
    return this.committedRows;
  }

  /** The manifest, with counts as of now. */
  get manifest(): WorkspaceManifest {
    return { ...this.manifestData, counts: { docs: this.committedDocs, chunks: this.committedRows } };
  }

  hasDoc(sha256: string): boolean {
    this.assertOpen();
    this.statements.hasDoc ??= this.db.prepare('SELECT 1 FROM docs WHERE sha256 = ? AND id < ?');
    return this.statements.hasDoc.get(sha256, this.committedDocs) !== undefined;
  }

  /**
   * Add documents in one atomic commit. Docs whose sha256 is already indexed (or repeated within
   * `docs`) are skipped. Returns the records of the docs added.
   */
  addDocs(docs: readonly NewDoc[]): DocRecord[] {
    this.assertOpen();
    if (!this.writable || this.matrixFd === undefined) throw new Error(`workspace ${this.dir} was opened for reading: open it with openForWrite to add documents`);
    const seen = new Set<string>();
    const fresh: NewDoc[] = [];
    for (const doc of docs) {
      this.checkNewDoc(doc);
      if (seen.has(doc.sha256) || this.hasDoc(doc.sha256)) continue;
      seen.add(doc.sha256);
      fresh.push(doc);
    }
    if (fresh.length === 0) return [];

    // 1. Rows go past the committed ones (overwriting leftovers of a failed attempt), durably.
    const rowBytes = this.dim * 4;
    let row = this.committedRows;
    for (const doc of fresh) {
      writeFully(this.matrixFd, doc.vectors, NPY_DATA_OFFSET + row * rowBytes);
      row += doc.chunks.length;
    }
    fs.fdatasyncSync(this.matrixFd);

    // 2. The metadata and the new row count commit together: this is the commit point.
    const added: DocRecord[] = [];
    const insertDoc = this.statements.insertDoc ??= this.db.prepare('INSERT INTO docs (id, path, sha256, bytes, width, height, label, chunk_count, first_chunk) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const insertChunk = this.statements.insertChunk ??= this.db.prepare('INSERT INTO chunks (row, doc, kind, x, y, w, h) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const setRows = this.statements.setRows ??= this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'committed_rows'`);
    this.db.transaction(() => {
      let id = this.committedDocs;
      let first = this.committedRows;
      for (const doc of fresh) {
        const record: DocRecord = {
          id, path: doc.path, sha256: doc.sha256, bytes: doc.bytes, width: doc.width, height: doc.height,
          label: doc.label ?? null, chunkCount: doc.chunks.length, firstChunk: first,
        };
        insertDoc.run(id, record.path, record.sha256, record.bytes, record.width, record.height, record.label, record.chunkCount, first);
        doc.chunks.forEach((chunk, i) => insertChunk.run(first + i, id, chunk.kind, chunk.box.x, chunk.box.y, chunk.box.width, chunk.box.height));
        added.push(record);
        id += 1;
        first += doc.chunks.length;
      }
      setRows.run(first);
    })();
    this.committedDocs += fresh.length;
    this.committedRows = row;
    this.cache = {};

    // 3. The npy header follows (numpy readers); a crash before this is repaired on the next open.
    fs.writeSync(this.matrixFd, npyHeader(this.committedRows, this.dim), 0, NPY_DATA_OFFSET, 0);
    return added;
  }

  /**
   * The chunk matrix, chunkCount × dim, read in place. A reader's is the file it opened (mapped at
   * open, so a swap renaming another in does not change it). A file rewritten in place and shorter
   * now would kill the process with SIGBUS on the first missing page, which JS cannot catch: its
   * size is checked on every call, i.e. before every search.
   */
  matrix(): Float32Array {
    this.assertOpen();
    this.assertMatrixWhole();
    this.cache.matrix ??= this.mapMatrix();
    return this.cache.matrix;
  }

  private mapMatrix(): Float32Array {
    if (this.committedRows === 0) return new Float32Array(0);
    // By descriptor where the OS names one, so the mapping is of the very file this workspace opened.
    const file = this.matrixFd !== undefined && fs.existsSync(`/proc/self/fd/${this.matrixFd}`) ? `/proc/self/fd/${this.matrixFd}` : path.join(this.root, MATRIX_FILE);
    return openMatrixFile(file, NPY_DATA_OFFSET, this.committedRows, this.dim);
  }

  private assertMatrixWhole(): void {
    const need = NPY_DATA_OFFSET + this.committedRows * this.dim * 4;
    const size = fs.fstatSync(this.matrixFd!).size;
    if (size < need) {
      throw new NoIndexError(this.dir, `index at ${this.dir} is damaged: ${path.join(this.root, MATRIX_FILE)} shrank to ${size} bytes under this reader, its ${this.committedRows} committed rows need ${need} ` +
        '(was it overwritten in place? replace index files by rename, or re-index); searches fail until it is reopened');
    }
  }

  /** All docs, by id. */
  docs(): DocRecord[] {
    this.assertOpen();
    this.cache.docs ??= (this.db.prepare('SELECT * FROM docs WHERE id < ? ORDER BY id').all(this.committedDocs) as DocRow[]).map(toDocRecord);
    return this.cache.docs;
  }

  doc(id: number): DocRecord | undefined {
    return Number.isInteger(id) && id >= 0 ? this.docs()[id] : undefined;
  }

  /** For every chunk row, the id of its doc. */
  chunkDoc(): Int32Array {
    if (!this.cache.chunkDoc) {
      const out = new Int32Array(this.committedRows);
      for (const d of this.docs()) out.fill(d.id, d.firstChunk, d.firstChunk + d.chunkCount);
      this.cache.chunkDoc = out;
    }
    return this.cache.chunkDoc;
  }

  /** For every doc id, its chunk count. */
  docChunkCounts(): Int32Array {
    this.cache.counts ??= Int32Array.from(this.docs(), (d) => d.chunkCount);
    return this.cache.counts;
  }

  /** For every doc id, the row of its whole-image chunk (-1 for a doc without one). */
  wholeChunkRows(): Int32Array {
    this.assertOpen();
    if (!this.cache.whole) {
      const out = new Int32Array(this.committedDocs).fill(-1);
      const rows = this.db.prepare(`SELECT doc, row FROM chunks WHERE kind = 'whole' AND row < ? ORDER BY row`).all(this.committedRows) as { doc: number; row: number }[];
      for (const r of rows) if (out[r.doc] === -1) out[r.doc] = r.row;
      this.cache.whole = out;
    }
    return this.cache.whole;
  }

  chunk(row: number): ChunkRecord {
    this.assertOpen();
    if (!Number.isInteger(row) || row < 0 || row >= this.committedRows) {
      throw new RangeError(`chunk row ${row} is outside 0..${this.committedRows - 1} in ${this.dir}`);
    }
    this.statements.chunk ??= this.db.prepare('SELECT * FROM chunks WHERE row = ?');
    return toChunkRecord(this.statements.chunk.get(row) as ChunkRow);
  }

  /** The chunks of one doc, in row order. */
  docChunks(id: number): ChunkRecord[] {
    const d = this.doc(id);
    if (!d) throw new RangeError(`doc ${id} is outside 0..${this.committedDocs - 1} in ${this.dir}`);
    return (this.db.prepare('SELECT * FROM chunks WHERE doc = ? ORDER BY row').all(id) as ChunkRow[]).map(toChunkRecord);
  }

  /**
   * Release the workspace. For a writer: record the counts in the manifest and the sources given
   * to openForWrite and, for a rebuild, swap the finished index (sources.json included) in place of
   * the old one.
   */
  close(): void {
    this.release(true);
  }

  /**
   * Release a writer after a failure: what addDocs committed stays, but a rebuild is dropped and
   * the old index stays in place (a half-built rebuild must never replace it).
   */
  abort(): void {
    this.release(false);
  }

  private release(finishRebuild: boolean): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.writable) {
        if (finishRebuild && this.sources) writeSources(this.root, this.sources);
        this.writeManifest();
        leaveWalMode(this.db);
      }
      this.db.close();
      if (this.matrixFd !== undefined) fs.closeSync(this.matrixFd);
      if (this.staged && finishRebuild) {
        completeRebuild(this.dir);
      } else if (this.staged) {
        removeIfExists(path.join(this.dir, STAGING_DIR));
      }
    } finally {
      this.releaseLock?.();
      this.releaseLock = undefined;
    }
  }

  /** Let go of the handles without writing anything (a failed open). */
  private dispose(): void {
    this.closed = true;
    this.db.close();
    if (this.matrixFd !== undefined) fs.closeSync(this.matrixFd);
  }

  private static create(dir: string, root: string, opts: OpenForWriteOptions, releaseLock: () => void): Workspace {
    // The manifest goes first on removal and last on creation: it marks a usable index.
    for (const f of [MANIFEST_FILE, DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`, MATRIX_FILE]) removeIfExists(path.join(root, f));
    const db = new Database(path.join(root, DB_FILE));
    let fd: number | undefined;
    try {
      configure(db, true);
      db.exec(SCHEMA);
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?), (?, ?)').run(
        'format_version', FORMAT_VERSION, 'committed_rows', 0, 'model_sha256', opts.model.sha256);
      fd = fs.openSync(path.join(root, MATRIX_FILE), 'w+');
      fs.writeSync(fd, npyHeader(0, opts.model.dim), 0, NPY_DATA_OFFSET, 0);
      fs.fsyncSync(fd);
      const now = new Date().toISOString();
      const manifest: WorkspaceManifest = {
        formatVersion: FORMAT_VERSION,
        model: { name: opts.model.name, sha256: opts.model.sha256, dim: opts.model.dim },
        chunking: JSON.parse(JSON.stringify(opts.chunking)) as Record<string, unknown>,
        created: now,
        updated: now,
        counts: { docs: 0, chunks: 0 },
        matrix: { file: MATRIX_FILE, dtype: '<f4', dataOffset: NPY_DATA_OFFSET },
        database: DB_FILE,
      };
      const ws = new Workspace({ dir, root, db, manifest, writable: true, staged: root !== dir, releaseLock });
      ws.matrixFd = fd;
      ws.sources = opts.sources;
      ws.writeManifest();
      return ws;
    } catch (err) {
      db.close();
      if (fd !== undefined) fs.closeSync(fd);
      throw err;
    }
  }

  private static openExisting(dir: string, root: string, writable: boolean, releaseLock?: () => void): Workspace {
    const manifest = readManifest(dir, root);
    const dbFile = path.join(root, DB_FILE);
    let db: Database.Database;
    try {
      db = new Database(dbFile, { readonly: !writable, fileMustExist: true });
    } catch (err) {
      throw new NoIndexError(dir, `index at ${dir} is damaged: cannot open ${dbFile} (${(err as Error).message}); re-index with --rebuild`);
    }
    let ws: Workspace;
    try {
      configure(db, writable);
      const modelSha = (db.prepare(`SELECT value FROM meta WHERE key = 'model_sha256'`).get() as { value: string } | undefined)?.value;
      if (modelSha !== manifest.model.sha256) {
        throw new NoIndexError(dir, `index at ${dir} is damaged: ${MANIFEST_FILE} and ${DB_FILE} disagree on the model; re-index with --rebuild`);
      }
      ws = new Workspace({ dir, root, db, manifest, writable, staged: false, releaseLock });
    } catch (err) {
      db.close();
      if (err instanceof NoIndexError) throw err;
      throw new NoIndexError(dir, `index at ${dir} is damaged: cannot read ${dbFile} (${(err as Error).message}); re-index with --rebuild`);
    }
    try {
      ws.openMatrixFile();
    } catch (err) {
      ws.dispose();
      throw err;
    }
    return ws;
  }

  /** Open chunks.npy and check it holds at least the committed rows — the invariant of addDocs. A reader maps it now: its snapshot. */
  private openMatrixFile(): void {
    const file = path.join(this.root, MATRIX_FILE);
    const damaged = (problem: string) => new NoIndexError(this.dir, `index at ${this.dir} is damaged: ${problem}; re-index with --rebuild`);
    try {
      this.matrixFd = fs.openSync(file, this.writable ? 'r+' : 'r');
    } catch (err) {
      throw damaged(`cannot open ${file} (${(err as Error).message})`);
    }
    try {
      readMatrixHeader(this.matrixFd, file, this.dim);
    } catch (err) {
      throw damaged((err as Error).message);
    }
    const need = NPY_DATA_OFFSET + this.committedRows * this.dim * 4;
    const size = fs.fstatSync(this.matrixFd).size;
    if (size < need) throw damaged(`${file} has ${size} bytes but ${this.committedRows} committed rows need ${need}`);
    if (!this.writable) this.cache.matrix = this.mapMatrix();
  }

  /** Writer only: drop rows past the commit point, make the npy header and manifest agree with SQLite. */
  private repair(): void {
    const fd = this.matrixFd!;
    const file = path.join(this.root, MATRIX_FILE);
    const size = NPY_DATA_OFFSET + this.committedRows * this.dim * 4;
    if (readMatrixHeader(fd, file, this.dim) !== this.committedRows || fs.fstatSync(fd).size !== size) {
      fs.writeSync(fd, npyHeader(this.committedRows, this.dim), 0, NPY_DATA_OFFSET, 0);
      fs.ftruncateSync(fd, size);
      fs.fsyncSync(fd);
    }
    const counts = this.manifestData.counts;
    if (counts.docs !== this.committedDocs || counts.chunks !== this.committedRows) this.writeManifest();
  }

  private writeManifest(): void {
    this.manifestData = { ...this.manifest, updated: new Date().toISOString() };
    writeFileAtomic(path.join(this.root, MANIFEST_FILE), JSON.stringify(this.manifestData, null, 2) + '\n');
  }

  private checkNewDoc(doc: NewDoc): void {
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
    if (!(doc.vectors instanceof Float32Array) || doc.vectors.length !== doc.chunks.length * this.dim) {
      throw new TypeError(`${where}: vectors must be a Float32Array of ${doc.chunks.length} × ${this.dim} values`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`workspace ${this.dir} is closed`);
  }
}

/** How long a reader waits for a live writer's swap to finish (it takes milliseconds). */
const SWAP_WAIT_MS = 5000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function writeFully(fd: number, data: Float32Array, position: number): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}
