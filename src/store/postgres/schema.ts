/**
 * The store's tables (in the schema `flower`), their versioned migrations and the identity record.
 *
 * flower.schema_version  one row per applied migration; the highest is the store's version. A store
 *                        older than this code is upgraded (one transaction, under an advisory lock, so
 *                        concurrent openers wait and upgrade once); a newer one, or a `flower` schema
 *                        without this table, is refused: never read with the wrong layout.
 * flower.meta            key → jsonb: 'model' {name, sha256, dim}, 'chunking', 'vector_type', 'created':
 *                        what built the store, compared like the local manifest.
 * flower.docs            one row per distinct file content (sha256 UNIQUE), with its path.
 * flower.chunks          one row per chunk: its doc, position in the doc (ord), kind, box, and the
 *                        L2-normalized embedding as vector(dim) or halfvec(dim).
 */
import type pg from 'pg';
import { IncompatibleIndexError, NoIndexError } from '../../errors.js';
import { canonicalJson, type ModelIdentity } from '../manifest.js';
import { inTransaction } from './transaction.js';

export const SCHEMA = 'flower';

/** How embeddings are stored: float32 (`vector`) or float16 (`halfvec`, half the bytes). */
export type VectorType = 'vector' | 'halfvec';
export const VECTOR_TYPES: readonly VectorType[] = ['vector', 'halfvec'];

/** What a store was built with. */
export interface StoreIdentity {
  readonly model: ModelIdentity;
  readonly chunking: Record<string, unknown>;
  readonly vectorType: VectorType;
}

/** One step of the layout: `sql` takes the store's embedding shape (fixed at creation). */
export interface Migration {
  readonly version: number;
  readonly sql: (shape: { dim: number; vectorType: VectorType }) => string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: ({ dim, vectorType }) => `
      CREATE TABLE ${SCHEMA}.meta (key text PRIMARY KEY, value jsonb NOT NULL);
      CREATE TABLE ${SCHEMA}.docs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        path text NOT NULL,
        sha256 text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        bytes bigint NOT NULL,
        width integer NOT NULL,
        height integer NOT NULL,
        label text,
        chunk_count integer NOT NULL CHECK (chunk_count > 0)
      );
      CREATE TABLE ${SCHEMA}.chunks (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        doc bigint NOT NULL REFERENCES ${SCHEMA}.docs (id) ON DELETE CASCADE,
        ord integer NOT NULL,
        kind text NOT NULL CHECK (kind IN ('window', 'whole')),
        x integer NOT NULL, y integer NOT NULL, w integer NOT NULL, h integer NOT NULL,
        embedding ${vectorType}(${dim}) NOT NULL,
        UNIQUE (doc, ord)
      );
      ${inlineEmbeddings(dim, vectorType) ? `ALTER TABLE ${SCHEMA}.chunks ALTER COLUMN embedding SET STORAGE PLAIN;` : ''}`,
  },
];

/**
 * Whether a chunk row, embedding included, fits in one 8 kB heap page: then the embedding is kept
 * inline (STORAGE PLAIN) instead of out of line (pgvector's default), and an exact search is ~4×
 * faster (12k rows of 1280-d, 6 queries, k 64: 42 vs 160 ms float32, 40 vs 150 ms float16).
 * Float32 rows then take a page each (8.3 kB/row against 6.1 kB out of line); float16 2.8 kB.
 */
function inlineEmbeddings(dim: number, vectorType: VectorType): boolean {
  return 8 + dim * (vectorType === 'vector' ? 4 : 2) <= 7900;
}

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Serializes creations and upgrades across every process that opens the store. */
const SCHEMA_LOCK = 0x666c6f776572; // "flower"

/** The store's version: 0 when the database has no store yet. Refuses a `flower` schema that is not one. */
export async function schemaVersion(db: pg.Pool | pg.PoolClient, shown: string): Promise<number> {
  // Plain catalog queries, not to_regclass(): they read the statement's snapshot, while the name
  // caches may not have seen a store another process created while this one waited for the lock.
  const { rows } = await db.query<{ ns: boolean; tbl: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS ns,
            EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'schema_version') AS tbl`,
    [SCHEMA],
  );
  if (!rows[0].ns) return 0;
  if (!rows[0].tbl) {
    throw new IncompatibleIndexError(shown, [`the database has a schema "${SCHEMA}" without a schema_version table: it was not made by flower-native (drop it or use another database)`]);
  }
  const { rows: versions } = await db.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${SCHEMA}.schema_version`);
  const version = versions[0].version;
  if (version === null) throw new IncompatibleIndexError(shown, [`the store's schema_version table is empty: its layout is unknown (drop the schema "${SCHEMA}" and re-index)`]);
  return version;
}

function refuseNewer(shown: string, version: number, latest: number): never {
  throw new IncompatibleIndexError(shown, [`schema version: the store is at version ${version}, this flower-native knows versions up to ${latest}: upgrade flower-native to use it`]);
}

/**
 * Bring the store to the latest version of `migrations`: create it (with `create`'s identity) when
 * the database has none, upgrade an older one. Returns the version it is at now: 0 when there is no
 * store and `create` was not given (a reader).
 */
export async function prepareSchema(pool: pg.Pool, shown: string, create?: StoreIdentity, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  const latest = migrations[migrations.length - 1].version;
  const seen = await schemaVersion(pool, shown);
  if (seen > latest) refuseNewer(shown, seen, latest);
  if (seen === latest || (seen === 0 && !create)) return seen;

  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    // Another process may have created or upgraded it while this one waited for the lock.
    const version = await schemaVersion(client, shown);
    if (version > latest) refuseNewer(shown, version, latest);
    if (version < latest) {
      if (version === 0) {
        await client.query(`CREATE SCHEMA ${SCHEMA}; CREATE TABLE ${SCHEMA}.schema_version (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`);
      }
      const shape = version === 0 ? { dim: create!.model.dim, vectorType: create!.vectorType } : await readShape(client, shown);
      for (const migration of migrations.filter((m) => m.version > version)) {
        await client.query(migration.sql(shape));
        await client.query(`INSERT INTO ${SCHEMA}.schema_version (version) VALUES ($1)`, [migration.version]);
      }
      if (version === 0) await writeIdentity(client, create!);
    }
    return latest;
  });
}

async function writeIdentity(client: pg.PoolClient, identity: StoreIdentity): Promise<void> {
  const { name, sha256, dim } = identity.model;
  await client.query(`INSERT INTO ${SCHEMA}.meta (key, value) VALUES ('model', $1), ('chunking', $2), ('vector_type', $3), ('created', $4)`, [
    JSON.stringify({ name, sha256, dim }),
    canonicalJson(identity.chunking),
    JSON.stringify(identity.vectorType),
    JSON.stringify(new Date().toISOString()),
  ]);
}

/** What built the store, as recorded at its creation. */
export async function readIdentity(db: pg.Pool | pg.PoolClient, shown: string): Promise<StoreIdentity> {
  const { rows } = await db.query<{ key: string; value: unknown }>(`SELECT key, value FROM ${SCHEMA}.meta`);
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const model = meta.get('model') as ModelIdentity | undefined;
  const chunking = meta.get('chunking') as Record<string, unknown> | undefined;
  const vectorType = meta.get('vector_type') as VectorType | undefined;
  if (!model || typeof model.sha256 !== 'string' || !Number.isInteger(model.dim) || typeof chunking !== 'object' || !VECTOR_TYPES.includes(vectorType!)) {
    throw new NoIndexError(shown, `store at ${shown} is damaged: ${SCHEMA}.meta lacks the model, chunking or vector type; re-index it into an empty database`);
  }
  return { model, chunking, vectorType: vectorType! };
}

async function readShape(client: pg.PoolClient, shown: string): Promise<{ dim: number; vectorType: VectorType }> {
  const identity = await readIdentity(client, shown);
  return { dim: identity.model.dim, vectorType: identity.vectorType };
}
