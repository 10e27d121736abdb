/**
 * Queries over a Postgres store: `query --store` and `serve --store` give the local store's top-10
 * on the same images (exact mode: same paths, scores within 1e-5), HNSW keeps recall@64 ≥ 0.98,
 * servers see docs added while they run, and a bad store is one clear line (exit 69).
 */
import fs from 'node:fs/promises';
import type { ExecutionContext } from 'ava';
import { copyWorkspaceToPostgres } from '../bench/scale-out-query.js';
import { flowerImage } from '../bench/fixtures.js';
import { DEFAULT_EF_SEARCH, PostgresChunkIndex } from '../src/search/index.js';
import { Workspace } from '../src/store/index.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { serve } from '../src/server/serve.js';
import { makeDataDir, modelDir, runCli, startCli, subset, tempDir } from './e2e-helpers.js';
import { createTestDatabase, createTestRole, postgresTest, testPgUrl, withUser } from './helpers/postgres.js';

const test = postgresTest('postgres-query');
const IMAGES = subset(3, 6);
/** Two indexed images and one the index does not hold, from the same classes. */
const QUERIES = [flowerImage(IMAGES[0]), flowerImage(IMAGES[8]), flowerImage(IMAGES[15] + 10)];

interface JsonHit {
  path: string;
  score: number;
}
interface JsonOut {
  mode: string;
  queries: { results: JsonHit[] }[];
}

let workspace = '';

test.before(async () => {
  if (!testPgUrl()) return;
  const data = await makeDataDir(IMAGES);
  workspace = `${await tempDir('pgq')}/ws`;
  const indexed = await runCli(['index', '--data', data, '--workspace', workspace, '--model', modelDir]);
  if (indexed.code !== 0) throw new Error(`index failed: ${indexed.stderr}`);
});

/** A fresh database holding the local index's docs (or only `docs` of them). */
async function pushed(t: ExecutionContext, docs?: readonly number[]): Promise<string> {
  const { url } = await createTestDatabase(t);
  const local = Workspace.openForRead(workspace);
  try {
    const store = await PostgresStore.openForWrite(url, { model: local.manifest.model, chunking: local.manifest.chunking });
    await copyWorkspaceToPostgres(local, store, { docs });
    await store.close();
  } finally {
    local.close();
  }
  return url;
}

function sameTop(t: ExecutionContext, got: readonly JsonHit[], want: readonly JsonHit[], what: string): void {
  t.deepEqual(
    got.map((hit) => hit.path),
    want.map((hit) => hit.path),
    `${what}: same docs in the same order`,
  );
  got.forEach((hit, i) => t.true(Math.abs(hit.score - want[i].score) <= 1e-5, `${what}: rank ${i + 1} scores ${hit.score} vs ${want[i].score}`));
}

async function queryJson(store: string[], extra: string[] = []): Promise<JsonOut> {
  const out = await runCli(['query', ...QUERIES, ...store, '--model', modelDir, '--json', '--top', '10', '--exact', ...extra]);
  if (out.code !== 0) throw new Error(`query failed (${out.code}): ${out.stderr}`);
  return JSON.parse(out.stdout) as JsonOut;
}

test.serial('query --store postgres:// gives the local top-10 in exact mode (bimatch by default there, and whole)', async (t) => {
  const url = await pushed(t);
  const remote = await queryJson(['--store', url]);
  t.is(remote.mode, 'bimatch', 'the default mode on a Postgres store is bimatch');
  for (const mode of ['bimatch', 'whole']) {
    const local = await queryJson(['--workspace', workspace], ['--mode', mode]);
    const overPg = await queryJson(['--store', url], ['--mode', mode]);
    t.is(local.queries.length, QUERIES.length);
    local.queries.forEach((q, i) => {
      t.is(q.results.length, 10);
      sameTop(t, overPg.queries[i].results, q.results, `${mode} query ${i}`);
      if (mode === 'bimatch') sameTop(t, remote.queries[i].results, q.results, `default-mode query ${i}`);
    });
  }
  const viaStore = await queryJson(['--store', workspace], ['--mode', 'bimatch']);
  sameTop(t, viaStore.queries[0].results, (await queryJson(['--workspace', workspace], ['--mode', 'bimatch'])).queries[0].results, '--store with a folder');
});

test.serial('the modes that read the whole matrix are refused on a Postgres store, naming the ones that work', async (t) => {
  const url = await pushed(t);
  const out = await runCli(['query', QUERIES[0], '--store', url, '--model', modelDir, '--mode', 'expanded']);
  t.is(out.code, 1);
  t.regex(out.stderr, /expanded ranking reads the whole chunk matrix.*mode bimatch or whole there \(default bimatch\)/);
  t.is(out.stderr.trim().split('\n').length, 1, out.stderr);
});

test.serial('serve --store postgres:// answers with the local top-10 (exact)', async (t) => {
  const url = await pushed(t);
  const bytes = await fs.readFile(QUERIES[1]);
  const top = async (store: string): Promise<JsonHit[]> => {
    const running = await serve({ workspace: store, model: modelDir, port: 0, log: false, exact: true });
    try {
      const response = await fetch(`${running.url}search?top=10&mode=bimatch`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bytes });
      t.is(response.status, 200);
      return ((await response.json()) as { results: JsonHit[] }).results;
    } finally {
      await running.close();
    }
  };
  const local = await top(workspace);
  t.is(local.length, 10);
  sameTop(t, await top(url), local, 'serve');
});

test.serial('HNSW recall@64 of the chunk top-k against exact is at least 0.98', async (t) => {
  // The whole fixture index when FLOWER_BENCH_WORKSPACE names it (1360 images, 8346 chunks), else the test subset.
  const source = process.env.FLOWER_BENCH_WORKSPACE ?? workspace;
  const { url } = await createTestDatabase(t);
  const local = Workspace.openForRead(source);
  const store = await PostgresStore.openForWrite(url, { model: local.manifest.model, chunking: local.manifest.chunking });
  t.teardown(async () => {
    local.close();
    await store.close();
  });
  await copyWorkspaceToPostgres(local, store);
  await store.buildHnswIndex();
  const exact = await PostgresChunkIndex.open(store, { exact: true });
  t.is(exact.searchMode, 'exact');
  let found = 0;
  let total = 0;
  const docs = local.docs();
  for (let i = 0; i < 20; i++) {
    const doc = docs[Math.floor((i * docs.length) / 20)];
    const queries = local.matrix().slice(doc.firstChunk * local.dim, (doc.firstChunk + doc.chunkCount) * local.dim);
    const truth = await exact.chunkCandidates(queries, 64);
    const approx = await store.topK(queries, 64, { mode: 'hnsw', efSearch: DEFAULT_EF_SEARCH });
    for (let q = 0; q < doc.chunkCount; q++) {
      const want = new Set(Array.from(truth.topk.ids.subarray(q * 64, (q + 1) * 64), (slot) => (slot < 0 ? -1 : truth.chunkRows[slot])).filter((id) => id >= 0));
      for (const slot of approx.topk.ids.subarray(q * 64, (q + 1) * 64)) if (slot >= 0 && want.has(approx.chunkIds[slot])) found++;
      total += want.size;
    }
  }
  const recall = found / total;
  t.log(`recall@64 at ef_search ${DEFAULT_EF_SEARCH} on ${local.chunkCount} chunks: ${recall.toFixed(4)}`);
  t.true(recall >= 0.98, `recall ${recall}`);
});

test.serial('two serve processes on one store both see docs added while they run', async (t) => {
  const url = await pushed(
    t,
    Array.from({ length: 12 }, (_, i) => i),
  );
  const started = [startCli(['serve', '--store', url, '--model', modelDir, '--port', '0', '--no-log']), startCli(['serve', '--store', url, '--model', modelDir, '--port', '0', '--no-log'])];
  t.teardown(() => started.forEach((child) => child.kill('SIGKILL')));
  const urls = await Promise.all(
    started.map(
      (child) =>
        new Promise<string>((resolve, reject) => {
          let err = '';
          child.stderr!.on('data', (chunk: Buffer) => {
            err += chunk.toString();
            const match = /listening on (http:\/\/\S+\/)/.exec(err);
            if (match) resolve(match[1]);
          });
          child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
        }),
    ),
  );
  const health = async (base: string) => ((await (await fetch(`${base}healthz`)).json()) as { docs: number }).docs;
  for (const base of urls) t.is(await health(base), 12);

  const local = Workspace.openForRead(workspace);
  const store = await PostgresStore.openForWrite(url, { model: local.manifest.model, chunking: local.manifest.chunking });
  await copyWorkspaceToPostgres(local, store, { docs: Array.from({ length: IMAGES.length - 12 }, (_, i) => i + 12) });
  await store.close();
  local.close();

  const added = flowerImage(IMAGES[15]);
  const bytes = await fs.readFile(added);
  for (const base of urls) {
    const response = await fetch(`${base}search?top=3`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bytes });
    t.is(response.status, 200);
    const { results } = (await response.json()) as { results: JsonHit[] };
    t.true(results[0].path.endsWith(added.split('/').pop()!), `${base}: a doc added while serving is found as itself (${results[0].path})`);
    t.is(await health(base), 18, `${base} counts the added docs`);
  }
});

test.serial('a bad store is one clear line through query --store: unreachable 69, refused password 69, no index 1', async (t) => {
  const one = async (url: string, code: number, line: RegExp) => {
    const out = await runCli(['query', QUERIES[0], '--store', url, '--model', modelDir]);
    t.is(out.code, code, out.stderr);
    t.is(out.stderr.trim().split('\n').length, 1, out.stderr);
    t.regex(out.stderr, line);
  };
  const unreachable = new URL(testPgUrl()!);
  unreachable.port = '1';
  await one(unreachable.toString(), 69, /cannot reach PostgreSQL at .*127\.0\.0\.1:1/);
  const role = await createTestRole(t, 'right-password');
  await one(withUser(testPgUrl()!, role, 'wrong-password'), 69, new RegExp(`refused the password for role "${role}"`));
  // A database without pgvector enabled holds no store (a server without pgvector installed is a 69 too, not reproducible here).
  const { url } = await createTestDatabase(t);
  await one(url, 1, /no index at postgres:\/\/.*run `flower-native index --store/);
});
