/**
 * The persistent index: a workspace directory holding
 *  - manifest.json  what built it (format version, model, chunking parameters) and a count summary (manifest.ts);
 *  - chunks.npy     every chunk vector, one float32 L2-normalized row each (npy.ts);
 *  - index.sqlite   doc and chunk metadata, each doc's rows' CRC-32, and `committed_rows`, the commit point (metadata.ts, integrity.ts);
 *  - sources.json   the model and data folders it was built from (sources.ts);
 *  - .lock          the single-writer lock (lock.ts).
 *
 * Crash safety: addDocs appends rows past the committed ones, fsyncs them, then commits the
 * metadata (and the new row count) in one SQLite transaction. Rows past the committed count are
 * invisible to readers and cut off by the next writer, so a kill -9 at any moment leaves a
 * consistent index. Rebuilds, and the compaction that removes docs, are staged and swapped in when
 * finished (swap.ts); one writer at a time (lock.ts). A writer refuses to append to a damaged index
 * (integrity.ts). Files are only ever appended to past the committed rows or replaced by rename,
 * never rewritten in place, so a reader's snapshot stays whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { NoIndexError } from '../errors.js';
import { openMatrixFile } from '../kernels/index.js';
import { NPY_DATA_OFFSET, npyHeader, readMatrixHeader } from './npy.js';
import { removeIfExists, writeError, writeFileAtomic } from '../util/files.js';
import { acquireWriteLock, tryWriteLock } from './lock.js';
import {
  assertSameIdentity,
  checkModelIdentity,
  DB_FILE,
  FORMAT_VERSION,
  MANIFEST_FILE,
  MATRIX_FILE,
  readManifest,
  type ExpectedIdentity,
  type ModelIdentity,
  type WorkspaceManifest,
} from './manifest.js';
import { checkDatabase, checkRows, quickCheckFile, rowsChecksum, type DamagedDoc, type IntegrityReport } from './integrity.js';
import {
  addChecksumColumn,
  checkNewDoc,
  configure,
  leaveWalMode,
  SCHEMA,
  toChunkRecord,
  toDocRecord,
  toNewDoc,
  type ChunkRecord,
  type ChunkRow,
  type DocRecord,
  type DocRow,
  type NewDoc,
} from './metadata.js';
import { planChanges, type ListedFile, type ReconcileOptions, type WorkspaceChanges } from './changes.js';
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
  private db: Database.Database;
  private readonly writable: boolean;
  private readonly staged: boolean;
  private manifestData: WorkspaceManifest;
  private committedRows: number;
  private committedDocs: number;
  private matrixFd: number | undefined;
  private releaseLock: (() => void) | undefined;
  private sources: WorkspaceSources | undefined;
  private closed = false;
  /** Made by this writer (create): an abort before any commit removes it again. */
  private fresh = false;
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
    this.committedRows = 0;
    this.committedDocs = 0;
    this.readCommitPoint();
  }

  private readCommitPoint(): void {
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
        ws.assertUndamaged();
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
   * Check everything a workspace holds (integrity.ts): the files, SQLite's quick_check, every doc's
   * rows against their checksum and for NaN/zero/non-unit rows. Reads the committed state without
   * taking the lock; a missing index is a NoIndexError, damage is reported, not thrown.
   */
  static verify(dir: string): IntegrityReport {
    dir = path.resolve(dir);
    Workspace.settleStagingForRead(dir);
    if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) throw new NoIndexError(dir, `no index at ${dir}: nothing to verify`);
    let ws: Workspace;
    try {
      ws = Workspace.openExisting(dir, dir, false);
    } catch (err) {
      if (!(err instanceof NoIndexError)) throw err;
      const files = [err.message, ...quickCheckFile(path.join(dir, DB_FILE))];
      return { workspace: dir, ok: false, docs: 0, rows: 0, files: [...new Set(files)], damagedDocs: [], unchecksummed: 0 };
    }
    try {
      const { database, damagedDocs, unchecksummed } = ws.inspect();
      return { workspace: dir, ok: database.length === 0 && damagedDocs.length === 0, docs: ws.committedDocs, rows: ws.committedRows, files: database, damagedDocs, unchecksummed };
    } finally {
      ws.close();
    }
  }

  /**
   * Repair what can be repaired: drop the docs whose rows are damaged (the next index run encodes
   * their files again). Damage to index.sqlite itself cannot be repaired: that needs a rebuild.
   * Returns the docs dropped.
   */
  static dropDamagedDocs(dir: string): DocRecord[] {
    dir = path.resolve(dir);
    const releaseLock = acquireWriteLock(dir);
    let ws: Workspace;
    try {
      settleStaging(dir);
      if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) throw new NoIndexError(dir, `no index at ${dir}: nothing to repair`);
      ws = Workspace.openExisting(dir, dir, true, releaseLock);
    } catch (err) {
      releaseLock();
      throw err;
    }
    try {
      const { database, damagedDocs } = ws.inspect();
      if (database.length > 0) {
        throw new NoIndexError(dir, `index at ${dir} cannot be repaired: ${DB_FILE} is damaged (${database[0]}); re-index it with \`flower-native index --rebuild --workspace ${dir}\``);
      }
      const dropped = ws.removeDocs(damagedDocs.map((d) => d.id));
      ws.repair();
      ws.close();
      return dropped;
    } catch (err) {
      ws.abort();
      throw err;
    }
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
  assertCompatible(expected: ExpectedIdentity): void {
    assertSameIdentity(this.dir, this.manifestData, expected);
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
    this.assertWriter();
    const fd = this.matrixFd!;
    const seen = new Set<string>();
    const fresh: NewDoc[] = [];
    for (const doc of docs) {
      checkNewDoc(doc, this.dim);
      if (seen.has(doc.sha256) || this.hasDoc(doc.sha256)) continue;
      seen.add(doc.sha256);
      fresh.push(doc);
    }
    if (fresh.length === 0) return [];

    // 1. Rows go past the committed ones (overwriting leftovers of a failed attempt), durably.
    const rowBytes = this.dim * 4;
    let row = this.committedRows;
    try {
      for (const doc of fresh) {
        writeFully(fd, doc.vectors, NPY_DATA_OFFSET + row * rowBytes);
        row += doc.chunks.length;
      }
      fs.fdatasyncSync(fd);
    } catch (err) {
      this.cutUncommittedRows();
      throw writeError(path.join(this.root, MATRIX_FILE), err);
    }

    // 2. The metadata and the new row count commit together: this is the commit point.
    const added: DocRecord[] = [];
    const insertDoc = (this.statements.insertDoc ??= this.db.prepare(
      'INSERT INTO docs (id, path, sha256, bytes, width, height, label, chunk_count, first_chunk, rows_crc32) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ));
    const insertChunk = (this.statements.insertChunk ??= this.db.prepare('INSERT INTO chunks (row, doc, kind, x, y, w, h) VALUES (?, ?, ?, ?, ?, ?, ?)'));
    const setRows = (this.statements.setRows ??= this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'committed_rows'`));
    const commit = this.db.transaction(() => {
      let id = this.committedDocs;
      let first = this.committedRows;
      for (const doc of fresh) {
        const record: DocRecord = {
          id,
          path: doc.path,
          sha256: doc.sha256,
          bytes: doc.bytes,
          width: doc.width,
          height: doc.height,
          label: doc.label ?? null,
          chunkCount: doc.chunks.length,
          firstChunk: first,
        };
        insertDoc.run(id, record.path, record.sha256, record.bytes, record.width, record.height, record.label, record.chunkCount, first, rowsChecksum(doc.vectors));
        doc.chunks.forEach((chunk, i) => insertChunk.run(first + i, id, chunk.kind, chunk.box.x, chunk.box.y, chunk.box.width, chunk.box.height));
        added.push(record);
        id += 1;
        first += doc.chunks.length;
      }
      setRows.run(first);
    });
    try {
      commit();
    } catch (err) {
      this.cutUncommittedRows();
      throw writeError(path.join(this.root, DB_FILE), err);
    }
    this.committedDocs += fresh.length;
    this.committedRows = row;
    this.cache = {};

    // 3. The npy header follows (numpy readers); a crash before this is repaired on the next open.
    fs.writeSync(fd, npyHeader(this.committedRows, this.dim), 0, NPY_DATA_OFFSET, 0);
    return added;
  }

  /** After a failed add: give back the space of the rows written past the commit point (the next writer would cut them anyway). */
  private cutUncommittedRows(): void {
    try {
      fs.ftruncateSync(this.matrixFd!, NPY_DATA_OFFSET + this.committedRows * this.dim * 4);
    } catch {
      // Best effort: the error being reported is the one that matters.
    }
  }

  /**
   * Bring the index in line with a listing of the folder it was built from (changes.ts decides):
   * moved files get their new path, docs whose content is gone are removed. Returns what changed.
   */
  reconcile(listing: readonly ListedFile[], opts: ReconcileOptions = {}): WorkspaceChanges {
    this.assertWriter();
    const { moves, removals } = planChanges(this.docs(), listing, opts);
    if (moves.length > 0) {
      const setPath = this.db.prepare('UPDATE docs SET path = ? WHERE id = ?');
      this.db.transaction(() => moves.forEach((m) => setPath.run(m.to, m.id)))();
      this.cache = {};
    }
    const sha = new Map(moves.map((m) => [m.id, this.docs()[m.id].sha256]));
    this.removeDocs(removals.map((d) => d.id));
    return { moved: moves.map((m) => ({ from: m.from, to: m.to, sha256: sha.get(m.id)! })), removed: removals.map((d) => ({ path: d.path, sha256: d.sha256 })) };
  }

  /**
   * Remove docs for good. The index is rewritten without them (ids renumbered densely, in the same
   * order) into the staging directory and swapped in like a rebuild, so a crash at any moment
   * leaves the old or the new index, queries stay exact, and readers keep the snapshot they opened.
   * Every kept doc's rows are checked against their checksum on the way. Returns the docs removed.
   */
  removeDocs(ids: readonly number[]): DocRecord[] {
    this.assertWriter();
    const drop = new Set(ids.filter((id) => this.doc(id) !== undefined));
    if (drop.size === 0) return [];
    if (this.staged) throw new Error(`removeDocs: workspace ${this.dir} is being rebuilt; a rebuild holds only the docs added to it`);
    const removed = this.docs().filter((d) => drop.has(d.id));
    const staging = path.join(this.dir, STAGING_DIR);
    removeIfExists(staging);
    fs.mkdirSync(staging);
    const copy = Workspace.create(this.dir, staging, { model: this.manifestData.model, chunking: this.manifestData.chunking, created: this.manifestData.created });
    let handlesClosed = false;
    try {
      this.copyDocsInto(copy, drop);
      this.closeHandles();
      handlesClosed = true;
      copy.close(); // the swap
    } catch (err) {
      copy.abort();
      throw err;
    } finally {
      if (handlesClosed) {
        settleStaging(this.dir);
        this.reopenHandles();
      }
    }
    return removed;
  }

  /** Every doc not in `drop` with its chunks and rows, in id order, into `copy`, in commits of about COPY_ROWS rows. */
  private copyDocsInto(copy: Workspace, drop: ReadonlySet<number>): void {
    const matrix = this.matrix();
    const chunks = this.db.prepare('SELECT * FROM chunks WHERE row < ? ORDER BY row').iterate(this.committedRows) as IterableIterator<ChunkRow>;
    const crc = this.db.prepare('SELECT id, rows_crc32 AS crc FROM docs WHERE id < ?').all(this.committedDocs) as { id: number; crc: number | null }[];
    let batch: NewDoc[] = [];
    let batchRows = 0;
    try {
      for (const doc of this.docs()) {
        const records = Array.from({ length: doc.chunkCount }, () => toChunkRecord(chunks.next().value as ChunkRow));
        if (drop.has(doc.id)) continue;
        const vectors = matrix.slice(doc.firstChunk * this.dim, (doc.firstChunk + doc.chunkCount) * this.dim);
        const expected = crc[doc.id].crc;
        if (expected !== null && rowsChecksum(vectors) !== expected) {
          throw new NoIndexError(this.dir, `index at ${this.dir} is damaged: the rows of doc ${doc.id} (${doc.path}) differ from their checksum; see \`flower-native verify --workspace ${this.dir}\``);
        }
        batch.push(toNewDoc(doc, records, vectors));
        batchRows += doc.chunkCount;
        if (batchRows >= COPY_ROWS) {
          copy.addDocs(batch);
          batch = [];
          batchRows = 0;
        }
      }
    } finally {
      chunks.return?.(); // the statement stays busy until its iterator is done
    }
    copy.addDocs(batch);
  }

  /** Let go of the database and matrix (the database back in rollback mode) while keeping the lock: the files are about to be replaced. */
  private closeHandles(): void {
    leaveWalMode(this.db);
    this.db.close();
    fs.closeSync(this.matrixFd!);
    this.matrixFd = undefined;
  }

  /** A writer's handles on the files in place now (after a swap it made itself, under its lock). */
  private reopenHandles(): void {
    this.db = new Database(path.join(this.root, DB_FILE), { fileMustExist: true });
    configure(this.db, true);
    this.statements = {};
    this.cache = {};
    this.readCommitPoint();
    this.manifestData = readManifest(this.dir, this.root);
    this.matrixFd = fs.openSync(path.join(this.root, MATRIX_FILE), 'r+');
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
      throw new NoIndexError(
        this.dir,
        `index at ${this.dir} is damaged: ${path.join(this.root, MATRIX_FILE)} shrank to ${size} bytes under this reader, its ${this.committedRows} committed rows need ${need} ` +
          '(was it overwritten in place? replace index files by rename, or re-index); searches fail until it is reopened',
      );
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
  /** Doc `id` as `addDocs` (of either store) takes it, its rows a view of the mapped matrix: for copying it into another store. */
  docForCopy(id: number): NewDoc {
    const chunks = this.docChunks(id);
    const doc = this.docs()[id];
    return toNewDoc(doc, chunks, this.matrix().subarray(doc.firstChunk * this.dim, (doc.firstChunk + doc.chunkCount) * this.dim));
  }

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
   * the old index stays in place (a half-built rebuild must never replace it), and an index this
   * writer created and committed nothing to is removed. Never throws: the failure that led here is
   * the one to report.
   */
  abort(): void {
    this.release(false);
  }

  private release(finishRebuild: boolean): void {
    if (this.closed) return;
    this.closed = true;
    // Every step is tried, so that a failing one (a full disk) still lets go of the files and the lock.
    const failures: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (err) {
        failures.push(err);
      }
    };
    const dbFile = path.join(this.root, DB_FILE);
    if (this.writable) {
      if (finishRebuild && this.sources) attempt(() => writeSources(this.root, this.sources!));
      attempt(() => this.writeManifest());
      attempt(() => {
        try {
          leaveWalMode(this.db);
        } catch (err) {
          throw writeError(dbFile, err);
        }
      });
    }
    attempt(() => this.db.close());
    if (this.matrixFd !== undefined) attempt(() => fs.closeSync(this.matrixFd!));
    if (this.staged) {
      // A rebuild is swapped in only when all of it was written; otherwise it is dropped (finished, if it got as far as READY).
      if (finishRebuild && failures.length === 0) attempt(() => completeRebuild(this.dir));
      if (!finishRebuild || failures.length > 0) attempt(() => settleStaging(this.dir));
    } else if (!finishRebuild && this.fresh && this.committedDocs === 0) {
      attempt(() => removeIndexFiles(this.root)); // the failed run made this empty index: nothing to keep
    }
    attempt(() => this.releaseLock?.());
    this.releaseLock = undefined;
    if (finishRebuild && failures.length > 0) throw failures[0];
  }

  /** Let go of the handles without writing anything (a failed open). */
  private dispose(): void {
    this.closed = true;
    this.db.close();
    if (this.matrixFd !== undefined) fs.closeSync(this.matrixFd);
  }

  /** A new, empty index in `root`; `created` carries over the creation time of the index a compaction rewrites. */
  private static create(dir: string, root: string, opts: OpenForWriteOptions & { created?: string }, releaseLock?: () => void): Workspace {
    removeIndexFiles(root);
    const dbFile = path.join(root, DB_FILE);
    const matrixFile = path.join(root, MATRIX_FILE);
    let db: Database.Database | undefined;
    let fd: number | undefined;
    try {
      try {
        db = new Database(dbFile);
        configure(db, true);
        db.exec(SCHEMA);
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?), (?, ?)').run('format_version', FORMAT_VERSION, 'committed_rows', 0, 'model_sha256', opts.model.sha256);
      } catch (err) {
        throw writeError(dbFile, err);
      }
      try {
        fd = fs.openSync(matrixFile, 'w+');
        fs.writeSync(fd, npyHeader(0, opts.model.dim), 0, NPY_DATA_OFFSET, 0);
        fs.fsyncSync(fd);
      } catch (err) {
        throw writeError(matrixFile, err);
      }
      const now = new Date().toISOString();
      const manifest: WorkspaceManifest = {
        formatVersion: FORMAT_VERSION,
        model: { name: opts.model.name, sha256: opts.model.sha256, dim: opts.model.dim },
        chunking: JSON.parse(JSON.stringify(opts.chunking)) as Record<string, unknown>,
        created: opts.created ?? now,
        updated: now,
        counts: { docs: 0, chunks: 0 },
        matrix: { file: MATRIX_FILE, dtype: '<f4', dataOffset: NPY_DATA_OFFSET },
        database: DB_FILE,
      };
      const ws = new Workspace({ dir, root, db, manifest, writable: true, staged: root !== dir, releaseLock });
      ws.matrixFd = fd;
      ws.fresh = true;
      ws.sources = opts.sources;
      ws.writeManifest();
      return ws;
    } catch (err) {
      try {
        db?.close();
        if (fd !== undefined) fs.closeSync(fd);
        removeIndexFiles(root); // half made: nothing to keep
      } catch {
        // The creation error is the one to report.
      }
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
      if (writable) addChecksumColumn(db);
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
      ws.openMatrix();
    } catch (err) {
      ws.dispose();
      throw err;
    }
    return ws;
  }

  /** Open chunks.npy and check it holds at least the committed rows — the invariant of addDocs. A reader maps it now: its snapshot. */
  private openMatrix(): void {
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

  /** What is damaged, by file and by doc (the integrity.ts checks over the committed state). */
  private inspect(): { database: string[]; damagedDocs: DamagedDoc[]; unchecksummed: number } {
    const database = checkDatabase(this.db, this.committedDocs, this.committedRows);
    // Rows are found through the docs table: when SQLite itself is damaged, there is no trusting that.
    if (database.length > 0) return { database, damagedDocs: [], unchecksummed: 0 };
    return { database, ...checkRows(this.db, this.matrixFd!, this.dim, this.committedDocs) };
  }

  /** A writer never appends to a damaged index: what it added would be lost or mixed up with the damage. */
  private assertUndamaged(): void {
    const { database, damagedDocs } = this.inspect();
    const problems = [...database, ...damagedDocs.map((d) => `doc ${d.id} (${d.path}): ${d.problems.join('; ')}`)];
    if (problems.length === 0) return;
    const shown = problems.slice(0, 3).join('\n  - ') + (problems.length > 3 ? `\n  - and ${problems.length - 3} more` : '');
    const repair =
      database.length > 0
        ? `re-index it with \`flower-native index --rebuild --workspace ${this.dir}\``
        : `drop the damaged docs with \`flower-native verify --repair --workspace ${this.dir}\` (the next index run encodes them again), or re-index with --rebuild`;
    throw new NoIndexError(this.dir, `index at ${this.dir} is damaged, nothing was added:\n  - ${shown}\nsee \`flower-native verify --workspace ${this.dir}\`; ${repair}`);
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

  private assertWriter(): void {
    this.assertOpen();
    if (!this.writable) throw new Error(`workspace ${this.dir} was opened for reading: open it with openForWrite to change it`);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`workspace ${this.dir} is closed`);
  }
}

/** The files of an index, the manifest first: it goes first on removal and last on creation, since it marks a usable index. */
const INDEX_FILES = [MANIFEST_FILE, DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`, MATRIX_FILE];

function removeIndexFiles(root: string): void {
  for (const f of INDEX_FILES) removeIfExists(path.join(root, f));
}

/** A compaction commits the docs it copies in groups of about this many rows. */
const COPY_ROWS = 4096;

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
