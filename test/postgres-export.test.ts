/** `export`: a local index pushed into a Postgres store as it is (no re-encoding); a second export writes nothing. */
import { indexImages } from '../src/flows/indexing.js';
import { exportWorkspace } from '../src/flows/export.js';
import { makeDataDir, modelDir, runCli, subset, tempDir } from './e2e-helpers.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';
import { assertStoreEqualsWorkspace, pgQuery } from './helpers/pg-fleet.js';

const test = postgresTest('postgres-export');

test('export equals the local index, and running it twice writes nothing twice', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const workspace = await tempDir('export-ws');
  await indexImages({ data: await makeDataDir(subset(2, 5)), workspace, model: modelDir, replicas: 1 });
  const first = await runCli(['export', '--workspace', workspace, '--store', url]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /exported 10 of 10 images \((\d+) chunk rows/);
  await assertStoreEqualsWorkspace(t, url, workspace);
  const before = await pgQuery<{ ids: string; inserted: number }>(
    url,
    `SELECT (SELECT string_agg(id::text, ',' ORDER BY id) FROM flower.docs) AS ids, (SELECT n_tup_ins::int FROM pg_stat_user_tables WHERE relid = 'flower.chunks'::regclass) AS inserted`,
  );
  const second = await runCli(['export', '--workspace', workspace, '--store', url]);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /exported 0 of 10 images \(0 chunk rows.*; 10 were in the store already/);
  await assertStoreEqualsWorkspace(t, url, workspace);
  // Same doc rows, and no chunk row inserted (not even one rolled back).
  await new Promise((resolve) => setTimeout(resolve, 700)); // the statistics collector's flush interval is 500 ms
  t.deepEqual(
    await pgQuery(
      url,
      `SELECT (SELECT string_agg(id::text, ',' ORDER BY id) FROM flower.docs) AS ids, (SELECT n_tup_ins::int FROM pg_stat_user_tables WHERE relid = 'flower.chunks'::regclass) AS inserted`,
    ),
    before,
  );
});

test('an export that leaves the store past the HNSW threshold builds the HNSW index once, as index --store does', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const workspace = await tempDir('export-hnsw-ws');
  await indexImages({ data: await makeDataDir(subset(1, 3)), workspace, model: modelDir, replicas: 1 });
  const hnswIndexes = async () => (await pgQuery<{ n: number }>(url, `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'flower' AND indexdef ILIKE '%USING hnsw%'`))[0].n;
  const notices: string[] = [];
  await exportWorkspace({ workspace, store: url, onNotice: (m) => notices.push(m) });
  t.is(await hnswIndexes(), 0, 'below the default threshold (20 000 chunks) queries scan exactly: no index');
  t.deepEqual(notices, []);
  const first = await exportWorkspace({ workspace, store: url, hnswFromChunks: 1, onNotice: (m) => notices.push(m) });
  t.is(first.added, 0);
  t.regex(notices.join('\n'), new RegExp(`^building the HNSW index over ${first.total.chunks} chunks`, 'm'));
  t.regex(notices.join('\n'), /^built the HNSW index in [\d.]+ s/m);
  t.is(await hnswIndexes(), 2, 'the HNSW indexes over all chunks and over the whole-image chunks');
  notices.length = 0;
  await exportWorkspace({ workspace, store: url, hnswFromChunks: 1, onNotice: (m) => notices.push(m) });
  t.deepEqual(notices, [], 'kept, not built again');
  await assertStoreEqualsWorkspace(t, url, workspace);
});
