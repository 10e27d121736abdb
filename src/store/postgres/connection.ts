/**
 * A connection pool for a postgres:// URL, and the one-line StoreUnavailableError for each way a
 * connection fails: the server cannot be reached, it refuses the role or password, the database is
 * missing, or pgvector is neither in the database nor creatable there.
 */
import pg from 'pg';
import { StoreUnavailableError } from '../../errors.js';

export interface PoolOptions {
  /** Connections at most (default 4). */
  max?: number;
  /** Give up connecting after this long (default 10 s): a silent host fails instead of hanging. */
  connectTimeoutMs?: number;
}

/** The URL with its password masked: what every message shows. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** A pool whose first connection has been made, so a bad URL fails here with a clear line. */
export async function connectPool(url: string, opts: PoolOptions = {}): Promise<pg.Pool> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreUnavailableError(redactUrl(url), `not a PostgreSQL URL: ${redactUrl(url)} (expected postgres://user[:password]@host[:port]/database)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StoreUnavailableError(redactUrl(url), `not a PostgreSQL URL: ${redactUrl(url)} (expected postgres://user[:password]@host[:port]/database)`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'flower-native',
    types: bigintsAsNumbers(),
  });
  // An idle connection that dies (server restart, network cut) is dropped and replaced on the next
  // query; without a listener the pool's 'error' event would end the process.
  pool.on('error', () => undefined);
  // A server restart mid-transaction must reach the caller as a query error, not an unhandled 'error' event.
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw connectError(url, err);
  }
  return pool;
}

/** bigint ids come back as numbers (they stay far below 2^53); every other type as pg parses it. */
function bigintsAsNumbers(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, Number);
  return types;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

/** The StoreUnavailableError for a failed connection attempt (anything else is passed through). */
export function connectError(url: string, err: unknown): Error {
  const shown = redactUrl(url);
  const e = err as { code?: string; message?: string };
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || 'the default user';
  const database = decodeURIComponent(parsed.pathname.slice(1)) || user;
  const reason = (e.message ?? String(err)).split('\n')[0];
  const fail = (message: string) => new StoreUnavailableError(shown, message, { cause: err });
  if ((e.code && UNREACHABLE.has(e.code)) || /timeout|terminated unexpectedly/i.test(reason)) {
    return fail(`cannot reach PostgreSQL at ${shown} (${reason}): check the host and port, and that the server is running and accepts TCP connections from this machine`);
  }
  switch (e.code) {
    case '28P01':
      return fail(`PostgreSQL at ${shown} refused the password for role "${user}": check the user and password in the URL`);
    case '28000':
      return fail(`PostgreSQL at ${shown} refused role "${user}" (${reason}): check the user in the URL, or ask the database admin for access`);
    case '3D000':
      return fail(`database "${database}" does not exist on ${shown}: create it (\`createdb ${database}\`) or fix the URL`);
    case '53300':
      return fail(`PostgreSQL at ${shown} has no connection slot free (${reason}): raise max_connections or run fewer workers`);
    case '57P03':
      return fail(`PostgreSQL at ${shown} is not accepting connections yet (${reason}): retry once it has started`);
  }
  // node-postgres' own message when the server asks for a password the URL does not give.
  if (/password must be a string|password authentication/i.test(reason)) {
    return fail(`PostgreSQL at ${shown} wants a password for role "${user}": add it to the URL (postgres://${user}:PASSWORD@…) or set PGPASSWORD`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Make sure pgvector is in the database: create it when it is missing (that needs a role allowed to),
 * and say in one line what to do when it cannot be.
 */
export async function ensureVectorExtension(pool: pg.Pool, url: string): Promise<void> {
  const shown = redactUrl(url);
  const installed = await pool.query(`SELECT 1 FROM pg_extension WHERE extname = 'vector'`);
  if (installed.rowCount) return;
  const available = await pool.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`);
  if (!available.rowCount) throw missingVectorExtension(shown);
  try {
    await pool.query('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (err) {
    // Another process may have created it a moment ago (CREATE EXTENSION races on the catalog).
    if ((await pool.query(`SELECT 1 FROM pg_extension WHERE extname = 'vector'`)).rowCount) return;
    const reason = (err as Error).message.split('\n')[0];
    throw new StoreUnavailableError(
      shown,
      `pgvector is installed on the server but not enabled in the database at ${shown}, and this role cannot enable it (${reason}): run \`CREATE EXTENSION vector;\` there as a superuser or the database owner`,
      { cause: err },
    );
  }
}

export function missingVectorExtension(shown: string): StoreUnavailableError {
  return new StoreUnavailableError(
    shown,
    `the PostgreSQL server at ${shown} has no pgvector extension installed: install it on the server (Debian/Ubuntu: postgresql-NN-pgvector; or run the pgvector/pgvector container image)`,
  );
}
