/**
 * Past one Postgres, measured on loopback (a manual run, not a section of `npm run bench`):
 * the same chunk rows in one store, and hash-partitioned by doc over N stores (databases of one
 * server here; servers of their own in production) queried in parallel with the chunk top-k merged
 * per query row, exact mode; and queries/s from 1 and 2 concurrent clients of one server (what a
 * read replica adds, a replica being one more such server). Checks that the merged top-k scores
 * equal the single store's.
 *
 *   FLOWER_BENCH_PG_URL=postgres://… [FLOWER_BENCH_WORKSPACE=ws] [FLOWER_BENCH_SHARD_ROWS=100000] [FLOWER_BENCH_SHARDS=2] node dist/bench/scale-out-shards.js
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Workspace, type NewDoc } from '../src/store/index.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { fill, pickQueries, timed } from './scale-out-query.js';
import { buildSmallIndex } from './small-index.js';

const K = 64;

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

async function main(): Promise<void> {
  const adminUrl = process.env.FLOWER_BENCH_PG_URL ?? process.env.FLOWER_TEST_PG_URL;
  if (!adminUrl) throw new Error('set FLOWER_BENCH_PG_URL to a PostgreSQL with pgvector');
  const rows = Number(process.env.FLOWER_BENCH_SHARD_ROWS ?? 100_000);
  const shardCount = Number(process.env.FLOWER_BENCH_SHARDS ?? 2);
  const small = process.env.FLOWER_BENCH_WORKSPACE ? undefined : await buildSmallIndex('flower-bench-shards');
  const workspace = Workspace.openForRead(process.env.FLOWER_BENCH_WORKSPACE ?? small!.workspace);
  const names = Array.from({ length: shardCount + 1 }, () => `flower_bench_${randomBytes(5).toString('hex')}`);
  const urlOf = (name: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const stores: PostgresStore[] = [];
  try {
    for (const name of names) {
      await admin(adminUrl, `CREATE DATABASE ${name}`);
      stores.push(await PostgresStore.openForWrite(urlOf(name), { model: workspace.manifest.model, chunking: workspace.manifest.chunking }));
    }
    const [whole, ...shards] = stores;
    let started = performance.now();
    await fill(whole, workspace, rows);
    const copyOne = (performance.now() - started) / 1000;
    // Docs go to shard (running doc number mod N): a hash partition by doc, as a fleet would split by sha256.
    let docNumber = 0;
    const router = {
      addDocs: async (docs: readonly NewDoc[]) => {
        const parts = shards.map(() => [] as NewDoc[]);
        for (const doc of docs) parts[docNumber++ % shards.length].push(doc);
        await Promise.all(parts.map((part, i) => (part.length ? shards[i].addDocs(part) : Promise.resolve([]))));
        return [];
      },
    };
    started = performance.now();
    await fill(router, workspace, rows);
    const copySharded = (performance.now() - started) / 1000;
    const queries = pickQueries(workspace);
    // The merged top-k must score as the single store's.
    let worst = 0;
    for (const q of queries) {
      const one = await whole.topK(q, K);
      const parts = await Promise.all(shards.map((s) => s.topK(q, K)));
      const n = q.length / workspace.dim;
      for (let r = 0; r < n; r++) {
        const merged = parts
          .flatMap((p) => Array.from(p.topk.scores.subarray(r * K, (r + 1) * K)))
          .sort((a, b) => b - a)
          .slice(0, K);
        merged.forEach((s, i) => (worst = Math.max(worst, Math.abs(s - one.topk.scores[r * K + i]))));
      }
    }
    const single = await timed(queries, (q) => whole.topK(q, K));
    const sharded = await timed(queries, (q) => Promise.all(shards.map((s) => s.topK(q, K))));
    const throughput = async (clients: number) => {
      const start = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < queries.length * 2) await whole.topK(queries[next++ % queries.length], K);
        }),
      );
      return (queries.length * 2) / ((performance.now() - start) / 1000);
    };
    const qps1 = await throughput(1);
    const qps2 = await throughput(2);
    const ms = (l: { p50: number; p95: number }) => `${l.p50.toFixed(1)} / ${l.p95.toFixed(1)} ms`;
    console.log(`rows ${rows} (${workspace.chunkCount} fixture + synthetic), ${shardCount} shards, exact top-${K} of all chunks of ${queries.length} real queries, p50 / p95:`);
    console.log(`  one store: ${ms(single)}; ${shardCount} shards in parallel, merged: ${ms(sharded)} (merged scores equal the single store's within ${worst.toExponential(1)})`);
    console.log(`  COPY: one store ${copyOne.toFixed(1)} s, ${shardCount} shards in parallel ${copySharded.toFixed(1)} s`);
    console.log(`  one server: ${qps1.toFixed(1)} queries/s with 1 client, ${qps2.toFixed(1)} with 2`);
  } finally {
    for (const s of stores) await s.close();
    for (const name of names) await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    workspace.close();
    small?.cleanup();
  }
}

await main();
