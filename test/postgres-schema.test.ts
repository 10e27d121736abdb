/** The Postgres store's layout: created fresh, upgraded when older, refused when newer or foreign; identity like the local manifest. */
import pg from 'pg';
import { IncompatibleIndexError, NoIndexError } from '../src/errors.js';
import { PostgresStore, SCHEMA_VERSION } from '../src/store/postgres/index.js';
import { MIGRATIONS, prepareSchema, schemaVersion, type Migration } from '../src/store/postgres/schema.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';
import { adminQuery, createTestDatabase, postgresTest } from './helpers/postgres.js';

const test = postgresTest('postgres-schema');
const dim = 8;
const opts = { model: testModel(dim), chunking: testChunking };

test('a fresh database gets the latest layout and the identity it was created with', async (t) => {
  const { url, name } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  t.deepEqual(store.identity, { model: testModel(dim), chunking: testChunking, vectorType: 'vector' });
  const versions = await adminQuery<{ version: number }>('SELECT version FROM flower.schema_version ORDER BY version', name);
  t.deepEqual(
    versions.rows.map((r) => r.version),
    MIGRATIONS.map((m) => m.version),
  );
  t.is(SCHEMA_VERSION, MIGRATIONS[MIGRATIONS.length - 1].version);
  const column = await adminQuery<{ type: string }>(`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'flower.chunks'::regclass AND attname = 'embedding'`, name);
  t.is(column.rows[0].type, `vector(${dim})`);

  // Opened again (another worker, same identity): nothing is redone, nothing is refused.
  const again = await PostgresStore.openForWrite(url, opts);
  await again.close();
  t.is((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM flower.schema_version', name)).rows[0].n, MIGRATIONS.length);
});

test('halfvec stores are made with a halfvec column', async (t) => {
  const { url, name } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, { ...opts, vectorType: 'halfvec' });
  await store.close();
  const column = await adminQuery<{ type: string }>(`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'flower.chunks'::regclass AND attname = 'embedding'`, name);
  t.is(column.rows[0].type, `halfvec(${dim})`);
  // An existing store keeps its own type whatever a later writer asks for.
  const reopened = await PostgresStore.openForWrite(url, { ...opts, vectorType: 'vector' });
  t.is(reopened.vectorType, 'halfvec');
  await reopened.close();
});

test('many writers creating the same store at once create it once', async (t) => {
  const { url, name } = await createTestDatabase(t);
  const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.openForWrite(url, opts)));
  await Promise.all(stores.map((s) => s.close()));
  t.is((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM flower.schema_version', name)).rows[0].n, MIGRATIONS.length);
  t.is((await adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM flower.meta WHERE key = 'model'`, name)).rows[0].n, 1);
});

test('an older store is upgraded in place and keeps its data', async (t) => {
  const { url, name } = await createTestDatabase(t);
  // The store as an older flower-native left it: the first migrations only, with a doc in it.
  const older = await PostgresStore.openForWrite(url, opts);
  await older.addDocs([makeDoc(1, dim)]);
  await older.close();
  const next: Migration = { version: SCHEMA_VERSION + 1, sql: ({ dim: d }) => `ALTER TABLE flower.docs ADD COLUMN note text DEFAULT 'dim ${d}'` };
  const pool = new pg.Pool({ connectionString: url });
  t.teardown(() => pool.end());
  t.is(await schemaVersion(pool, name), SCHEMA_VERSION);
  t.is(await prepareSchema(pool, name, undefined, [...MIGRATIONS, next]), SCHEMA_VERSION + 1);
  t.is(await schemaVersion(pool, name), SCHEMA_VERSION + 1);
  const docs = await adminQuery('SELECT path, note FROM flower.docs', name);
  t.deepEqual(docs.rows, [{ path: 'img/doc-1.jpg', note: `dim ${dim}` }]);
});

test('a store from before any table (v0: an empty database) is not an index to a reader', async (t) => {
  const { url } = await createTestDatabase(t);
  const err = await t.throwsAsync(PostgresStore.openForRead(url), { instanceOf: NoIndexError });
  t.regex(err.message, /^no index at postgres:\/\/.*: run `flower-native index --store/);
});

test('a newer store is refused, never read with the wrong layout', async (t) => {
  const { url, name } = await createTestDatabase(t);
  await (await PostgresStore.openForWrite(url, opts)).close();
  await adminQuery(`INSERT INTO flower.schema_version (version) VALUES (${SCHEMA_VERSION + 5})`, name);
  for (const open of [() => PostgresStore.openForWrite(url, opts), () => PostgresStore.openForRead(url)]) {
    const err = await t.throwsAsync(open(), { instanceOf: IncompatibleIndexError });
    t.regex(err.message, new RegExp(`store is at version ${SCHEMA_VERSION + 5}, this flower-native knows versions up to ${SCHEMA_VERSION}`));
  }
});

test('a `flower` schema that flower-native did not make is refused', async (t) => {
  const { url, name } = await createTestDatabase(t);
  await adminQuery('CREATE SCHEMA flower; CREATE TABLE flower.docs (x int)', name);
  const err = await t.throwsAsync(PostgresStore.openForWrite(url, opts), { instanceOf: IncompatibleIndexError });
  t.regex(err.message, /schema "flower" without a schema_version table/);
  t.deepEqual((await adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM flower.docs`, name)).rows[0], { n: 0 }, 'the foreign table was touched');
});

test('a store built with another model or chunking is refused with the same error as locally', async (t) => {
  const { url } = await createTestDatabase(t);
  await (await PostgresStore.openForWrite(url, opts)).close();
  const otherModel = await t.throwsAsync(PostgresStore.openForWrite(url, { ...opts, model: testModel(dim, 'b'.repeat(64)) }), { instanceOf: IncompatibleIndexError });
  t.regex(otherModel.message, /model sha256: the index was built with a{64} \(test-model\), this run uses b{64}/);
  const otherDim = await t.throwsAsync(PostgresStore.openForWrite(url, { ...opts, model: testModel(dim * 2) }), { instanceOf: IncompatibleIndexError });
  t.regex(otherDim.message, new RegExp(`embedding size: the index holds ${dim}-d vectors, this run makes ${dim * 2}-d`));
  const otherChunking = await t.throwsAsync(PostgresStore.openForWrite(url, { ...opts, chunking: { ...testChunking, stride: 56 } }), { instanceOf: IncompatibleIndexError });
  t.regex(otherChunking.message, /chunking params: the index used .*"stride":112.*this run uses .*"stride":56/);
  // Key order does not matter; a reader checks the same way.
  const reversed = Object.fromEntries(Object.entries(testChunking).reverse());
  await (await PostgresStore.openForWrite(url, { ...opts, chunking: reversed })).close();
  const reader = await PostgresStore.openForRead(url);
  t.teardown(() => reader.close());
  t.throws(() => reader.assertCompatible({ model: { sha256: 'c'.repeat(64) }, chunking: testChunking }), { instanceOf: IncompatibleIndexError });
  t.notThrows(() => reader.assertCompatible(opts));
});

test('embeddings are kept inline where a row fits a page, TOASTed where it does not (a 2000-d float32 row still stores)', async (t) => {
  const storageOf = async (name: string) =>
    (await adminQuery<{ attstorage: string }>(`SELECT attstorage FROM pg_attribute WHERE attrelid = 'flower.chunks'::regclass AND attname = 'embedding'`, name)).rows[0].attstorage;
  const small = await createTestDatabase(t);
  await (await PostgresStore.openForWrite(small.url, opts)).close();
  t.is(await storageOf(small.name), 'p');
  const large = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(large.url, { ...opts, model: testModel(2000) });
  t.teardown(() => store.close());
  t.not(await storageOf(large.name), 'p');
  t.is((await store.addDocs([makeDoc(0, 2000)])).length, 1);
});
