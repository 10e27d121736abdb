/** A Postgres store that cannot be used says why in one line: unreachable, refused login, no database, no pgvector. */
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { StoreUnavailableError } from '../src/errors.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { testChunking, testModel } from './helpers/store-docs.js';
import { adminQuery, createTestDatabase, createTestRole, postgresTest, testPgUrl, withDatabase, withUser } from './helpers/postgres.js';

const test = postgresTest('postgres-connect');
const writeOptions = { model: testModel(8), chunking: testChunking, pool: { connectTimeoutMs: 5000 } };

async function unavailable(t: ExecutionContext, url: string, expected: RegExp): Promise<string> {
  const err = await t.throwsAsync(PostgresStore.openForWrite(url, writeOptions), { instanceOf: StoreUnavailableError });
  t.regex(err.message, expected);
  t.false(err.message.includes('\n'), `more than one line: ${err.message}`);
  t.is(err.code, 'store_unavailable');
  return err.message;
}

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('an unreachable server', async (t) => {
  const url = new URL(testPgUrl()!);
  url.port = String(await closedPort());
  await unavailable(t, url.toString(), /^cannot reach PostgreSQL at postgres:\/\/.*127\.0\.0\.1:\d+.*ECONNREFUSED.*server is running/);
});

test('a wrong password, masked in the message', async (t) => {
  const role = await createTestRole(t, 'right-password');
  const message = await unavailable(t, withUser(testPgUrl()!, role, 'wrong-password'), new RegExp(`refused the password for role "${role}"`));
  t.false(message.includes('wrong-password'), 'the password leaked into the message');
  t.true(message.includes(':***@'));
});

test('a role that does not exist', async (t) => {
  await unavailable(t, withUser(testPgUrl()!, 'no_such_role_flower', 'x'), /no_such_role_flower/);
});

test('a database that does not exist', async (t) => {
  await unavailable(t, withDatabase(testPgUrl()!, 'no_such_db_flower'), /database "no_such_db_flower" does not exist on .*createdb no_such_db_flower/);
});

test('pgvector not enabled in the database and the role may not enable it', async (t) => {
  const role = await createTestRole(t, 'pw');
  const { url, name } = await createTestDatabase(t);
  const asRole = withUser(url, role, 'pw');
  await unavailable(t, asRole, new RegExp(`pgvector is installed on the server but not enabled in the database at .*${name}.*CREATE EXTENSION vector`));

  // Once an admin enables it (and lets the role create its tables), the same role can use the store.
  await adminQuery(`CREATE EXTENSION vector; GRANT CREATE ON DATABASE ${name} TO ${role}`, name);
  const store = await PostgresStore.openForWrite(asRole, writeOptions);
  t.is((await store.counts()).docs, 0);
  await store.close();
  await adminQuery(`DROP SCHEMA flower CASCADE`, name);
});

test('not a postgres URL', async (t) => {
  await unavailable(t, 'mysql://root@127.0.0.1/x', /^not a PostgreSQL URL: mysql:/);
  await unavailable(t, 'not a url', /^not a PostgreSQL URL/);
});
