/**
 * `index --store postgres://…` over a folder that changes, as over a workspace: docs of deleted
 * files are removed (unless --keep-missing), a moved file keeps its doc under the new path, the
 * summary says so, and another folder indexed into the same store keeps its docs. A store big
 * enough for HNSW queries gets its HNSW index at the end of a run, once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { indexImagesIntoPostgres } from '../src/flows/fleet.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { makeDataDir, modelDir, runCli, subset } from './e2e-helpers.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';
import { pgQuery } from './helpers/pg-fleet.js';

const test = postgresTest('postgres-index-run');

const index = (data: string, store: string, extra: { keepMissing?: boolean; hnswFromChunks?: number; onNotice?: (m: string) => void } = {}) =>
  indexImagesIntoPostgres({ data, store, model: modelDir, replicas: 1, pollMs: 100, ...extra });
const storedPaths = async (url: string) => (await pgQuery<{ path: string }>(url, 'SELECT path FROM flower.docs ORDER BY path')).map((r) => r.path);

test('a re-run drops the docs of deleted files, moves the doc of a moved file and says so; --keep-missing keeps them; another folder keeps its docs', async (t) => {
  t.timeout(300_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(2, 3)); // 6 images
  const other = await makeDataDir(subset(1, 1, 40)); // 1 image, another folder
  const first = await index(data, url);
  t.is(first.indexed, 6);
  t.deepEqual([first.moved, first.removed], [[], []]);
  t.is((await index(other, url)).indexed, 1);
  const otherFile = path.join(other, 'jpg', fs.readdirSync(path.join(other, 'jpg'))[0]);
  const files = fs
    .readdirSync(path.join(data, 'jpg'))
    .sort()
    .map((f) => path.join(data, 'jpg', f));
  const [deleted, movedFrom] = [files[1], files[4]];
  fs.rmSync(deleted);
  const movedTo = path.join(data, 'renamed', 'moved.jpg');
  fs.mkdirSync(path.dirname(movedTo));
  fs.renameSync(movedFrom, movedTo);

  const second = await runCli(['index', '--data', data, '--store', url, '--model', modelDir, '--replicas', '1']);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /indexed 0 images/);
  t.regex(second.stdout, /already indexed: 5,/);
  t.regex(second.stdout, /moved: 1, removed \(files gone from the folder\): 1/);
  t.true(second.stdout.includes(`moved ${movedFrom} -> ${movedTo}`), second.stdout);
  t.true(second.stdout.includes(`removed ${deleted}`), second.stdout);
  t.deepEqual(await storedPaths(url), [...files.filter((f) => f !== deleted && f !== movedFrom), movedTo, otherFile].sort(), "the other folder's doc stays");

  // The moved doc is found as itself under its new path.
  const found = await runCli(['query', movedTo, '--store', url, '--model', modelDir, '--top', '1', '--json']);
  t.is(found.code, 0, found.stderr);
  t.is((JSON.parse(found.stdout) as { queries: { results: { path: string }[] }[] }).queries[0].results[0].path, movedTo);

  // --keep-missing keeps a deleted file's doc (docs stay at 6); a later plain run drops it (5).
  fs.rmSync(files[0]);
  const runs = [await index(data, url, { keepMissing: true }), await index(data, url)];
  t.deepEqual(
    runs.map((run) => ({ removed: run.removed.map((r) => r.file), docs: run.total.docs })),
    [
      { removed: [], docs: 6 },
      { removed: [files[0]], docs: 5 },
    ],
  );
});

test('a run that leaves the store past the HNSW threshold builds the HNSW index; later runs keep it and do not build it again', async (t) => {
  t.timeout(300_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(1, 2));
  const notices: string[] = [];
  const first = await index(data, url, { hnswFromChunks: 1, onNotice: (m) => notices.push(m) });
  t.is(first.indexed, 2);
  t.regex(notices.join('\n'), /^building the HNSW index over \d+ chunks/m);
  t.regex(notices.join('\n'), /^built the HNSW index in [\d.]+ s/m);
  const store = await PostgresStore.openForRead(url);
  try {
    t.true(await store.hasHnswIndex());
  } finally {
    await store.close();
  }
  // A new image goes into the existing index (pgvector updates it on insert); no second build.
  notices.length = 0;
  await makeDataDir(subset(1, 1, 10), data);
  const second = await index(data, url, { hnswFromChunks: 1, onNotice: (m) => notices.push(m) });
  t.is(second.indexed, 1);
  t.deepEqual(notices, []);
  const [{ n }] = await pgQuery<{ n: number }>(url, `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'flower' AND indexdef ILIKE '%USING hnsw%'`);
  t.is(n, 2, 'the HNSW indexes over all chunks and over the whole-image chunks');
  // Below the threshold (the default 20 000 chunks) nothing is built.
  const small = await createTestDatabase(t);
  notices.length = 0;
  await index(data, small.url, { onNotice: (m) => notices.push(m) });
  t.deepEqual(notices, []);
});
