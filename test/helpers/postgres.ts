/**
 * The Postgres tests' server: FLOWER_TEST_PG_URL, a superuser URL of a PostgreSQL with pgvector
 * (.ci/run starts one with .ci/postgres.sh; locally: `url=$(.ci/postgres.sh start /tmp/pg)`).
 * Each test gets a database of its own, dropped at teardown.
 *
 * Without the URL the tests are declared skipped, with a warning on stderr (ava lists them as
 * skipped: a skipped test never runs, so there is no t.log to write to). Under CI the URL is
 * required: a missing one fails the test file instead of skipping it.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext, type TestFn } from 'ava';
import pg from 'pg';

export const PG_URL_VAR = 'FLOWER_TEST_PG_URL';

function inCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/** The test server's admin URL; undefined (after a warning) when none is configured outside CI. */
export function testPgUrl(): string | undefined {
  const url = process.env[PG_URL_VAR];
  if (url) return url;
  if (inCi()) throw new Error(`${PG_URL_VAR} is not set: under CI the Postgres tests must run (.ci/run starts a server with .ci/postgres.sh)`);
  return undefined;
}

/** `test` when a test server is configured; else `test.skip`, said loudly once per file. */
export function postgresTest(file: string): TestFn {
  if (testPgUrl()) return test;
  console.warn(`\n*** ${file}: SKIPPING every Postgres test: ${PG_URL_VAR} is not set (start a server: url=$(.ci/postgres.sh start /tmp/flower-pg) and export ${PG_URL_VAR}=$url) ***\n`);
  return test.skip as unknown as TestFn;
}

/** Run statements as the test server's superuser, on `database` (default: the admin URL's). */
export async function adminQuery<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, database?: string): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: database ? withDatabase(testPgUrl()!, database) : testPgUrl()! });
  await client.connect();
  try {
    return await client.query<R>(sql);
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export function withUser(url: string, user: string, password?: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password ?? '';
  return parsed.toString();
}

/** A fresh, empty database for this test (no pgvector in it yet); its superuser URL. Dropped at teardown. */
export async function createTestDatabase(t: ExecutionContext): Promise<{ url: string; name: string }> {
  const name = `flower_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name} STRATEGY FILE_COPY`); // PostgreSQL 15+; faster than WAL_LOG for an empty template
  t.teardown(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  return { url: withDatabase(testPgUrl()!, name), name };
}

/** A login role (with a password) that is not a superuser, dropped at teardown (after the test's databases). */
export async function createTestRole(t: ExecutionContext, password: string): Promise<string> {
  const role = `flower_role_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  t.teardown(async () => {
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });
  return role;
}

/** n L2-normalized rows of dim values (seeded), row-major. */
export function randomUnitRows(rand: () => number, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const row = out.subarray(r * dim, (r + 1) * dim);
    let norm = 0;
    for (let i = 0; i < dim; i++) {
      // The sum of two uniforms: rows spread in every direction, none favoured by the cube's corners.
      row[i] = rand() + rand() - 1;
      norm += row[i] * row[i];
    }
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < dim; i++) row[i] *= inv;
  }
  return out;
}
