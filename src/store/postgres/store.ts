/**
 * PostgresStore: the index in PostgreSQL + pgvector (see index.ts for the API in brief, schema.ts
 * for the tables).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { NoIndexError } from '../../errors.js';
import type { TopKResult } from '../../kernels/types.js';
import { assertSameIdentity, checkModelIdentity, type ExpectedIdentity, type ModelIdentity } from '../manifest.js';
import { checkNewDoc, toStoredDoc, type ChunkKind, type NewDoc, type StoredDoc, type StoredDocRow } from '../metadata.js';
import { binaryCopy, type CopyField } from './copy.js';
import { connectPool, ensureVectorExtension, missingVectorExtension, redactUrl, type PoolOptions } from './connection.js';
import { prepareSchema, readIdentity, SCHEMA, VECTOR_TYPES, type StoreIdentity, type VectorType } from './schema.js';
import { inTransaction } from './transaction.js';

export interface OpenPostgresOptions {
  pool?: PoolOptions;
}

export interface OpenPostgresForWriteOptions extends OpenPostgresOptions {
  model: ModelIdentity;
  chunking: Record<string, unknown>;
  /** How a new store keeps its embeddings (default 'vector', float32); an existing store keeps its own. */
  vectorType?: VectorType;
}

/** Ids are the store's identity column: unique, not dense. */
export type PgDocRecord = StoredDoc;

export interface PgChunkRecord {
  readonly id: number;
  readonly doc: number;
  /** Position of the chunk in its doc (the order the chunker made them in). */
  readonly ord: number;
  readonly kind: ChunkKind;
  readonly box: { x: number; y: number; width: number; height: number };
  /** The stored embedding, when asked for. */
  readonly vector?: Float32Array;
}

export interface TopKOptions {
  /** 'exact' (default): one full scan for all queries, ties broken by lower chunk id. 'hnsw': the HNSW index (approximate; a scan per query where none is built). */
  mode?: 'exact' | 'hnsw';
  /** HNSW candidate list size (pgvector's hnsw.ef_search); raised to k when smaller, since HNSW returns at most ef_search rows. */
  efSearch?: number;
  /** Only whole-image chunks (whole-image ranking; HNSW mode uses their own partial index). */
  wholeOnly?: boolean;
}

/**
 * Top-k chunk hits for Q query rows, in a compact local numbering: local chunk i is store chunk
 * `chunkIds[i]`, local doc j is store doc `docIds[j]` (both ascending, so ties between docs break as
 * in a local index built in the same order). `topk`, `chunkDoc` and `docChunkCounts` feed
 * kernels.biMatch as they are. Query q's slot s: local chunk `topk.ids[q * k + s]` (-1: unfilled),
 * score (inner product = cosine of unit vectors) `topk.scores[q * k + s]`.
 */
export interface ChunkHits {
  readonly topk: TopKResult;
  readonly chunkDoc: Int32Array;
  readonly docChunkCounts: Int32Array;
  readonly chunkIds: readonly number[];
  readonly chunkKinds: readonly ChunkKind[];
  readonly docIds: readonly number[];
}

export interface ListedFile {
  readonly path: string;
  readonly sha256: string;
}

export interface Reconciliation {
  /** Listed files whose content the store lacks (one path per distinct sha256): what to index. */
  readonly toIndex: ListedFile[];
  /** Docs whose content is listed under another path now: their path was updated. */
  readonly moved: { id: number; from: string; to: string }[];
  /** Docs whose content is no longer listed: deleted with their chunks (none with keepMissing). */
  readonly removed: { id: number; path: string; sha256: string }[];
}

export interface HnswOptions {
  /** Graph degree (pgvector default 16). */
  m?: number;
  /** Build candidate list size (pgvector default 64). */
  efConstruction?: number;
  /** Memory for the build (e.g. '1GB'); the graph builds much faster when it fits. Default: the server's setting. */
  maintenanceWorkMem?: string;
}

const HNSW_INDEX = 'chunks_embedding_hnsw';
const HNSW_WHOLE_INDEX = 'chunks_whole_embedding_hnsw';
/** pgvector's ceiling for hnsw.ef_search. */
const MAX_EF_SEARCH = 1000;

export class PostgresStore {
  /** The URL, password masked: for messages. */
  readonly location: string;
  readonly dim: number;
  readonly vectorType: VectorType;
  readonly identity: StoreIdentity;
  private readonly pool: pg.Pool;
  private closed = false;

  private constructor(pool: pg.Pool, location: string, identity: StoreIdentity) {
    this.pool = pool;
    this.location = location;
    this.identity = identity;
    this.dim = identity.model.dim;
    this.vectorType = identity.vectorType;
  }

  /**
   * Open a store to add documents to: enable pgvector, create the tables (recording the model and
   * chunking) or upgrade older ones, and refuse a store built with another model or chunking.
   */
  static async openForWrite(url: string, opts: OpenPostgresForWriteOptions): Promise<PostgresStore> {
    checkModelIdentity(opts.model);
    const vectorType = opts.vectorType ?? 'vector';
    if (!VECTOR_TYPES.includes(vectorType)) throw new TypeError(`vectorType must be one of ${VECTOR_TYPES.join(', ')}, got ${JSON.stringify(vectorType)}`);
    const pool = await connectPool(url, opts.pool);
    const shown = redactUrl(url);
    try {
      await ensureVectorExtension(pool, url);
      await prepareSchema(pool, shown, { model: opts.model, chunking: opts.chunking, vectorType });
      const store = new PostgresStore(pool, shown, await readIdentity(pool, shown));
      store.assertCompatible(opts);
      return store;
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  /** Open an existing store for queries (an older layout is upgraded first). */
  static async openForRead(url: string, opts: OpenPostgresOptions = {}): Promise<PostgresStore> {
    const pool = await connectPool(url, opts.pool);
    const shown = redactUrl(url);
    try {
      if ((await prepareSchema(pool, shown)) === 0) {
        // No store; a server without pgvector can hold none: that is what to fix first.
        if (!(await pool.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`)).rowCount) throw missingVectorExtension(shown);
        throw new NoIndexError(shown, `no index at ${shown}: run \`flower-native index --store ${shown}\` first`);
      }
      return new PostgresStore(pool, shown, await readIdentity(pool, shown));
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  /** Throws IncompatibleIndexError naming every difference between the store and this run. */
  assertCompatible(expected: ExpectedIdentity): void {
    assertSameIdentity(this.location, this.identity, expected);
  }

  async counts(): Promise<{ docs: number; chunks: number }> {
    const { rows } = await this.query<{ docs: number; chunks: number | null }>(`SELECT count(*) AS docs, sum(chunk_count)::bigint AS chunks FROM ${SCHEMA}.docs`);
    return { docs: rows[0].docs, chunks: rows[0].chunks ?? 0 };
  }

  /**
   * The doc counts and a mark that changes whenever a doc is added, removed or updated (a moved
   * path): a reader compares marks to know its cached doc list is stale. One scan of the docs table
   * (not the chunks), so cheap enough to run before every search.
   */
  async changeProbe(): Promise<{ docs: number; chunks: number; mark: string }> {
    // xmin is the transaction that wrote a row version: an UPDATE gives its row a new one.
    const { rows } = await this.query<{ docs: number; chunks: number | null; last: number | null; xmin: string | null }>(
      `SELECT count(*) AS docs, sum(chunk_count)::bigint AS chunks, max(id) AS last, max(xmin::text::bigint)::text AS xmin FROM ${SCHEMA}.docs`,
    );
    const r = rows[0];
    return { docs: r.docs, chunks: r.chunks ?? 0, mark: `${r.docs}/${r.chunks ?? 0}/${r.last ?? 0}/${r.xmin ?? 0}` };
  }

  /** Every doc, by id. */
  async listDocs(): Promise<PgDocRecord[]> {
    const { rows } = await this.query<StoredDocRow>(`SELECT id, path, sha256, bytes, width, height, label, chunk_count FROM ${SCHEMA}.docs ORDER BY id`);
    return rows.map(toStoredDoc);
  }

  /**
   * Add one job's documents in one transaction: the docs by one INSERT that skips content already
   * stored (ON CONFLICT on sha256, which also waits out a concurrent writer of the same content),
   * then the chunks of the docs it did insert by binary COPY. A retried job writes nothing twice.
   * Returns the docs added.
   */
  async addDocs(docs: readonly NewDoc[]): Promise<PgDocRecord[]> {
    const fresh = new Map<string, NewDoc>();
    for (const doc of docs) {
      this.checkNewDoc(doc);
      if (!fresh.has(doc.sha256)) fresh.set(doc.sha256, doc);
    }
    if (fresh.size === 0) return [];
    const list = [...fresh.values()];
    return this.transaction(async (client) => {
      const { rows } = await client.query<StoredDocRow>(
        `INSERT INTO ${SCHEMA}.docs (path, sha256, bytes, width, height, label, chunk_count)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::integer[], $6::text[], $7::integer[])
         ON CONFLICT (sha256) DO NOTHING
         RETURNING id, path, sha256, bytes, width, height, label, chunk_count`,
        [
          list.map((d) => d.path),
          list.map((d) => d.sha256),
          list.map((d) => d.bytes),
          list.map((d) => d.width),
          list.map((d) => d.height),
          list.map((d) => d.label ?? null),
          list.map((d) => d.chunks.length),
        ],
      );
      if (rows.length === 0) return [];
      const added = rows.map(toStoredDoc).sort((a, b) => a.id - b.id);
      const copyRows: CopyField[][] = [];
      for (const record of added) {
        const doc = fresh.get(record.sha256)!;
        doc.chunks.forEach((chunk, ord) => {
          copyRows.push([
            { int8: record.id },
            { int4: ord },
            { text: chunk.kind },
            { int4: chunk.box.x },
            { int4: chunk.box.y },
            { int4: chunk.box.width },
            { int4: chunk.box.height },
            { vector: doc.vectors, offset: ord * this.dim, dim: this.dim, type: this.vectorType },
          ]);
        });
      }
      await pipeline(Readable.from([binaryCopy(copyRows)]), client.query(copyFrom(`COPY ${SCHEMA}.chunks (doc, ord, kind, x, y, w, h, embedding) FROM STDIN (FORMAT binary)`)));
      return added;
    });
  }

  /**
   * For every row of `queries` (Q × dim, L2-normalized), its k nearest stored chunks by inner
   * product, all in one round trip.
   */
  async topK(queries: Float32Array, k: number, opts: TopKOptions = {}): Promise<ChunkHits> {
    const dim = this.dim;
    if (!(queries instanceof Float32Array) || queries.length === 0 || queries.length % dim !== 0) {
      throw new RangeError(`queries must be a non-empty Float32Array of Q × ${dim} values, got ${queries?.length}`);
    }
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    const mode = opts.mode ?? 'exact';
    if (mode !== 'exact' && mode !== 'hnsw') throw new RangeError(`mode must be 'exact' or 'hnsw', got ${JSON.stringify(mode)}`);
    const efSearch = Math.max(opts.efSearch ?? 40, k);
    if (mode === 'hnsw' && (!Number.isInteger(efSearch) || efSearch > MAX_EF_SEARCH)) {
      throw new RangeError(`HNSW search returns at most ef_search (≤ ${MAX_EF_SEARCH}) rows: k and efSearch must be integers ≤ ${MAX_EF_SEARCH}, got k ${k}, efSearch ${opts.efSearch}`);
    }
    const count = queries.length / dim;
    const where = opts.wholeOnly ? `WHERE c.kind = 'whole'` : '';
    const literals = Array.from({ length: count }, (_, q) => `'${vectorLiteral(queries, q * dim, dim)}'::${this.vectorType}`);
    let rows: HitRow[];
    if (mode === 'exact') {
      // One scan computes every query's distances (a scan per query costs Q times the reads: 6× slower
      // at 60k rows of 1280-d); each query's top k is then a top-N sort of that, ties by lower id.
      const distances = literals.map((literal, q) => `c.embedding <#> ${literal} AS d${q}`).join(', ');
      const branches = literals.map((_, q) => `(SELECT ${q} AS q, id, doc, kind, d${q} AS distance FROM scored ORDER BY d${q}, id LIMIT ${k})`);
      rows = (await this.query<HitRow>(`WITH scored AS MATERIALIZED (SELECT c.id, c.doc, c.kind, ${distances} FROM ${SCHEMA}.chunks c ${where}) ${hitsOf(branches)}`)).rows;
    } else {
      // A search of the index per query (ORDER BY the distance alone is what the index serves).
      const branches = literals.map((literal, q) => `(SELECT ${q} AS q, c.id, c.doc, c.kind, c.embedding <#> ${literal} AS distance FROM ${SCHEMA}.chunks c ${where} ORDER BY distance LIMIT ${k})`);
      // One simple-protocol message: BEGIN, the setting, the query and COMMIT travel together.
      rows = await this.simpleQuery<HitRow>(`BEGIN; SET LOCAL hnsw.ef_search = ${efSearch}; ${hitsOf(branches)}; COMMIT`);
    }
    return compactHits(rows, count, k);
  }

  /** The docs with these ids (in the order asked; unknown ids are left out). */
  async docs(ids: readonly number[]): Promise<PgDocRecord[]> {
    const { rows } = await this.query<StoredDocRow>(
      `SELECT d.id, d.path, d.sha256, d.bytes, d.width, d.height, d.label, d.chunk_count FROM unnest($1::bigint[]) WITH ORDINALITY AS asked (id, n) JOIN ${SCHEMA}.docs d USING (id) ORDER BY asked.n`,
      [ids],
    );
    return rows.map(toStoredDoc);
  }

  /** The chunks of these docs, by doc then position; with their embeddings when `vectors` is set. */
  async docChunks(docIds: readonly number[], opts: { vectors?: boolean } = {}): Promise<PgChunkRecord[]> {
    const { rows } = await this.query<ChunkRow>(
      `SELECT id, doc, ord, kind, x, y, w, h${opts.vectors ? ', embedding::text AS embedding' : ''} FROM ${SCHEMA}.chunks WHERE doc = ANY($1::bigint[]) ORDER BY doc, ord`,
      [docIds],
    );
    return rows.map((r) => ({
      id: r.id,
      doc: r.doc,
      ord: r.ord,
      kind: r.kind,
      box: { x: r.x, y: r.y, width: r.w, height: r.h },
      ...(r.embedding === undefined ? {} : { vector: Float32Array.from(JSON.parse(r.embedding) as number[]) }),
    }));
  }

  /**
   * Compare the store with a listing of the indexed files, in one transaction: a doc whose content
   * is listed under another path is moved there, a doc whose content is not listed is deleted
   * (unless keepMissing), and the listed contents the store lacks are returned to be indexed.
   * `under` (an absolute folder) says the listing covers that folder entirely, as a workspace's
   * reconcile: only docs under it are removed, and a doc elsewhere moves only when its own file is
   * gone (another folder indexed into the same store keeps its docs). Without it the listing must
   * be the whole collection the store indexes.
   */
  async reconcile(files: readonly ListedFile[], opts: { keepMissing?: boolean; under?: string } = {}): Promise<Reconciliation> {
    for (const f of files) {
      if (typeof f.path !== 'string' || f.path === '' || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) {
        throw new TypeError(`reconcile: every file needs a non-empty path and a sha256 of 64 lowercase hex digits, got ${JSON.stringify(f)}`);
      }
    }
    return this.transaction(async (client) => {
      await client.query('CREATE TEMP TABLE listing (path text NOT NULL, sha256 text NOT NULL) ON COMMIT DROP');
      await pipeline(Readable.from([binaryCopy(files.map((f) => [{ text: f.path }, { text: f.sha256 }]))]), client.query(copyFrom('COPY listing (path, sha256) FROM STDIN (FORMAT binary)')));
      await client.query('CREATE INDEX ON listing (sha256, path); ANALYZE listing');
      // A doc stays where it is when any listed copy of its content is at its path.
      const candidates = await client.query<{ id: number; from: string; to: string }>(
        `SELECT d.id, d.path AS "from", (SELECT min(l.path) FROM listing l WHERE l.sha256 = d.sha256) AS "to"
           FROM ${SCHEMA}.docs d
          WHERE EXISTS (SELECT 1 FROM listing l WHERE l.sha256 = d.sha256)
            AND NOT EXISTS (SELECT 1 FROM listing l WHERE l.sha256 = d.sha256 AND l.path = d.path)
          ORDER BY d.id`,
      );
      const scope = opts.under === undefined ? null : path.resolve(opts.under) + path.sep;
      const moved = candidates.rows.filter((m) => scope === null || m.from.startsWith(scope) || !fs.existsSync(m.from));
      if (moved.length) {
        await client.query(`UPDATE ${SCHEMA}.docs d SET path = m.path FROM unnest($1::bigint[], $2::text[]) AS m(id, path) WHERE d.id = m.id`, [moved.map((m) => m.id), moved.map((m) => m.to)]);
      }
      const removed = opts.keepMissing
        ? []
        : (
            await client.query<{ id: number; path: string; sha256: string }>(
              `DELETE FROM ${SCHEMA}.docs d WHERE NOT EXISTS (SELECT 1 FROM listing l WHERE l.sha256 = d.sha256) AND ($1::text IS NULL OR starts_with(d.path, $1)) RETURNING id, path, sha256`,
              [scope],
            )
          ).rows.sort((a, b) => a.id - b.id);
      const toIndex = await client.query<ListedFile>(
        `SELECT DISTINCT ON (sha256) path, sha256 FROM listing l WHERE NOT EXISTS (SELECT 1 FROM ${SCHEMA}.docs d WHERE d.sha256 = l.sha256) ORDER BY sha256, path`,
      );
      return { toIndex: toIndex.rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), moved, removed };
    });
  }

  /** Delete these docs and their chunks; returns how many there were. */
  async deleteDocs(ids: readonly number[]): Promise<number> {
    return (await this.query(`DELETE FROM ${SCHEMA}.docs WHERE id = ANY($1::bigint[])`, [ids])).rowCount ?? 0;
  }

  /**
   * Build the HNSW indexes (inner product) over all chunks and over the whole-image chunks, if not
   * there yet. Later inserts keep them up to date. Returns the build time.
   */
  async buildHnswIndex(opts: HnswOptions = {}): Promise<{ ms: number }> {
    const withParams: string[] = [];
    for (const [name, value] of [
      ['m', opts.m],
      ['ef_construction', opts.efConstruction],
    ] as const) {
      if (value === undefined) continue;
      if (!Number.isInteger(value) || value < 2) throw new RangeError(`${name} must be an integer ≥ 2, got ${value}`);
      withParams.push(`${name} = ${value}`);
    }
    if (opts.maintenanceWorkMem !== undefined && !/^\d+\s*(kB|MB|GB)$/.test(opts.maintenanceWorkMem)) {
      throw new RangeError(`maintenanceWorkMem must look like '512MB' or '2GB', got ${JSON.stringify(opts.maintenanceWorkMem)}`);
    }
    const ops = this.vectorType === 'vector' ? 'vector_ip_ops' : 'halfvec_ip_ops';
    const withClause = withParams.length ? `WITH (${withParams.join(', ')})` : '';
    const start = performance.now();
    await this.transaction(async (client) => {
      if (opts.maintenanceWorkMem) await client.query(`SET LOCAL maintenance_work_mem = '${opts.maintenanceWorkMem}'`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${HNSW_INDEX} ON ${SCHEMA}.chunks USING hnsw (embedding ${ops}) ${withClause}`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${HNSW_WHOLE_INDEX} ON ${SCHEMA}.chunks USING hnsw (embedding ${ops}) ${withClause} WHERE kind = 'whole'`);
    });
    return { ms: performance.now() - start };
  }

  async dropHnswIndex(): Promise<void> {
    await this.query(`DROP INDEX IF EXISTS ${SCHEMA}.${HNSW_INDEX}; DROP INDEX IF EXISTS ${SCHEMA}.${HNSW_WHOLE_INDEX}`);
  }

  async hasHnswIndex(): Promise<boolean> {
    const { rows } = await this.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${SCHEMA}.${HNSW_INDEX}`]);
    return rows[0].present;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    return this.pool.query<R>(text, values);
  }

  /** Several statements in one message; the rows of the one that returns rows. Rolls back on failure. */
  private async simpleQuery<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
    this.assertOpen();
    const client = await this.pool.connect();
    try {
      const results = (await client.query(text)) as unknown as pg.QueryResult<R>[];
      return results.find((r) => r.command === 'SELECT')!.rows;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    return inTransaction(this.pool, work);
  }

  private checkNewDoc(doc: NewDoc): void {
    checkNewDoc(doc, this.dim);
    if (!doc.vectors.every(Number.isFinite)) throw new TypeError(`addDocs(${JSON.stringify(doc.path)}): vectors must be finite (pgvector stores no NaN or infinity)`);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`store ${this.location} is closed`);
  }
}

interface ChunkRow {
  id: number;
  doc: number;
  ord: number;
  kind: ChunkKind;
  x: number;
  y: number;
  w: number;
  h: number;
  embedding?: string;
}
interface HitRow {
  q: number;
  id: number;
  doc: number;
  kind: ChunkKind;
  chunk_count: number;
  distance: number;
}

/**
 * A row of `values` as a vector literal. A float32 printed as the shortest decimal that reads back
 * as the same double parses back (pgvector's strtof) to the same float32: the query is exact.
 */
function vectorLiteral(values: Float32Array, offset: number, dim: number): string {
  let text = '[';
  for (let i = 0; i < dim; i++) text += (i ? ',' : '') + values[offset + i];
  return text + ']';
}

/** The per-query top-k branches as one result: query, chunk, its doc and the doc's chunk count, best first per query. */
function hitsOf(branches: readonly string[]): string {
  return `SELECT h.q, h.id, h.doc, h.kind, d.chunk_count, h.distance FROM (${branches.join(' UNION ALL ')}) h JOIN ${SCHEMA}.docs d ON d.id = h.doc ORDER BY h.q, h.distance, h.id`;
}

/** Hits (sorted by query, then best first) in the compact numbering of ChunkHits. */
function compactHits(rows: readonly HitRow[], queries: number, k: number): ChunkHits {
  const chunkIds = [...new Set(rows.map((r) => r.id))].sort((a, b) => a - b);
  const docIds = [...new Set(rows.map((r) => r.doc))].sort((a, b) => a - b);
  const chunkSlot = new Map(chunkIds.map((id, i) => [id, i]));
  const docSlot = new Map(docIds.map((id, i) => [id, i]));
  const chunkDoc = new Int32Array(chunkIds.length);
  const chunkKinds = new Array<ChunkKind>(chunkIds.length);
  const docChunkCounts = new Int32Array(docIds.length);
  const ids = new Int32Array(queries * k).fill(-1);
  const scores = new Float32Array(queries * k).fill(-Infinity);
  const filled = new Int32Array(queries);
  for (const r of rows) {
    const slot = chunkSlot.get(r.id)!;
    const doc = docSlot.get(r.doc)!;
    chunkDoc[slot] = doc;
    chunkKinds[slot] = r.kind;
    docChunkCounts[doc] = r.chunk_count;
    const at = r.q * k + filled[r.q]++;
    ids[at] = slot;
    scores[at] = -r.distance;
  }
  return { topk: { k, ids, scores }, chunkDoc, docChunkCounts, chunkIds, chunkKinds, docIds };
}
