/**
 * Scale-out, query side: the chunk top-k of a real query (all chunks of an indexed image, top-k 64)
 * from a Postgres store, exact vs HNSW at several ef_search values with recall@64 against exact,
 * side by side with the local store (the kernels' exact top-k over the in-memory matrix) in the same
 * run; the HNSW build time and bytes per chunk row. On the fixture index (FLOWER_BENCH_WORKSPACE,
 * default the small bench index) and on synthetic rows: the fixture's rows, each copied with noise
 * (σ = 0.02 per dimension, renormalized), so neighbours stay clustered as real ones are.
 *
 * Needs a PostgreSQL with pgvector: FLOWER_BENCH_PG_URL (or FLOWER_TEST_PG_URL), a role that may
 * create databases; a database of its own is made and dropped. 1M rows is a manual run
 * (FLOWER_BENCH_SCALE_OUT_ROWS=1000000 node dist/bench/main.js --sections scaleOutQuery, or runBench
 * with sectionOptions { scaleOutRows: [1_000_000] }): its COPY + HNSW build take too long for CI.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { kernels } from '../src/kernels/index.js';
import { Workspace, type NewDoc } from '../src/store/index.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { buildSmallIndex } from './small-index.js';
import type { BenchSection } from './section.js';
import { percentile } from './stats.js';

const K = 64;
const EF_SEARCH = [64, 100, 200] as const;
const QUERIES = 20;

/** Push a local workspace's docs into a Postgres store, in id order (so the stores number chunks alike), `batch` docs per transaction. */
export async function copyWorkspaceToPostgres(workspace: Workspace, store: Pick<PostgresStore, 'addDocs'>, opts: { batch?: number; docs?: readonly number[] } = {}): Promise<void> {
  const ids = opts.docs ?? workspace.docs().map((doc) => doc.id);
  const batch = opts.batch ?? 200;
  for (let i = 0; i < ids.length; i += batch) await store.addDocs(ids.slice(i, i + batch).map((id) => workspace.docForCopy(id)));
}

interface Case {
  readonly rows: number;
  readonly label: string;
  readonly local: Latency;
  readonly exact: Latency;
  readonly hnsw: (Latency & { efSearch: number; recall: number })[];
  readonly buildSeconds: number;
  readonly tableBytesPerRow: number;
  readonly hnswBytesPerRow: number;
}
interface Latency {
  readonly p50: number;
  readonly p95: number;
}

export const benchScaleOutQuery: BenchSection = async (options) => {
  const adminUrl = process.env.FLOWER_BENCH_PG_URL ?? process.env.FLOWER_TEST_PG_URL;
  if (!adminUrl) throw new Error('set FLOWER_BENCH_PG_URL (or FLOWER_TEST_PG_URL) to a PostgreSQL with pgvector: `url=$(bash .ci/postgres.sh start /tmp/pg)`');
  const small = process.env.FLOWER_BENCH_WORKSPACE ? undefined : await buildSmallIndex('flower-bench-scale-out');
  const workspace = Workspace.openForRead(process.env.FLOWER_BENCH_WORKSPACE ?? small!.workspace);
  const fromEnv = process.env.FLOWER_BENCH_SCALE_OUT_ROWS?.split(',').map(Number);
  if (fromEnv?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`FLOWER_BENCH_SCALE_OUT_ROWS must be row counts separated by commas, got ${process.env.FLOWER_BENCH_SCALE_OUT_ROWS}`);
  const extra = fromEnv ?? (options as { scaleOutRows?: number[] }).scaleOutRows ?? (options.quick ? [] : [100_000]);
  const cases: Case[] = [];
  try {
    for (const rows of [workspace.chunkCount, ...extra]) {
      cases.push(await measure(adminUrl, workspace, rows, options.log));
      options.log(`bench: scale-out query: ${JSON.stringify(cases.at(-1))}`); // kept in the log should a larger case fail
    }
  } finally {
    workspace.close();
    small?.cleanup();
  }
  const ms = (l: Latency) => `${l.p50.toFixed(1)} / ${l.p95.toFixed(1)}`;
  const lines = [
    `Chunk top-${K} of a real query (all chunks of an indexed image, ${QUERIES} queries), p50 / p95 ms; recall@${K} of HNSW against exact.`,
    '',
    `| rows | local exact | Postgres exact | ${EF_SEARCH.map((ef) => `HNSW ef ${ef} (recall)`).join(' | ')} | HNSW build | bytes/row table + HNSW |`,
    `|---|---|---|${EF_SEARCH.map(() => '---').join('|')}|---|---|`,
    ...cases.map(
      (c) =>
        `| ${c.label} | ${ms(c.local)} | ${ms(c.exact)} | ${c.hnsw.map((h) => `${ms(h)} (${h.recall.toFixed(3)})`).join(' | ')} | ${c.buildSeconds.toFixed(1)} s | ${Math.round(c.tableBytesPerRow)} + ${Math.round(c.hnswBytesPerRow)} |`,
    ),
  ];
  return { data: { k: K, queries: QUERIES, cases }, markdown: lines.join('\n') };
};

/** One store of `rows` chunk rows (the workspace's, then noisy copies), measured and dropped. */
async function measure(adminUrl: string, workspace: Workspace, rows: number, log: (line: string) => void): Promise<Case> {
  const name = `flower_bench_${randomBytes(5).toString('hex')}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    const { manifest } = workspace;
    const store = await PostgresStore.openForWrite(url.toString(), { model: manifest.model, chunking: manifest.chunking });
    try {
      log(`bench: scale-out query: ${rows} rows: COPY…`);
      const matrix = await fill(store, workspace, rows);
      const queries = pickQueries(workspace);
      const local = await timed(queries, (q) => kernels.cosineTopKAsync({ matrix, rows, dim: workspace.dim, queries: q, k: K }));
      const exactHits = await inTurn(queries, (q) => store.topK(q, K));
      const exact = await timed(queries, (q) => store.topK(q, K));
      log(`bench: scale-out query: ${rows} rows: HNSW build…`);
      const { ms: buildMs } = await store.buildHnswIndex({ maintenanceWorkMem: '2GB' });
      const hnsw = [];
      for (const efSearch of EF_SEARCH) {
        const approx = await inTurn(queries, (q) => store.topK(q, K, { mode: 'hnsw', efSearch }));
        hnsw.push({ efSearch, recall: recallOf(approx, exactHits), ...(await timed(queries, (q) => store.topK(q, K, { mode: 'hnsw', efSearch }))) });
      }
      const sizes = await admin<{ table: string; hnsw: string }>(
        url.toString(),
        `SELECT pg_total_relation_size('flower.chunks') - pg_indexes_size('flower.chunks') AS table, pg_relation_size('flower.chunks_embedding_hnsw') AS hnsw`,
      );
      return {
        rows,
        label: rows === workspace.chunkCount ? `${rows} (fixture)` : `${rows} (synthetic)`,
        local,
        exact,
        hnsw,
        buildSeconds: buildMs / 1000,
        tableBytesPerRow: Number(sizes[0].table) / rows,
        hnswBytesPerRow: Number(sizes[0].hnsw) / rows,
      };
    } finally {
      await store.close();
    }
  } finally {
    await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/** The workspace's rows, then noisy copies up to `rows`, into the store; the same rows as one matrix (what a local store holds). */
export async function fill(store: Pick<PostgresStore, 'addDocs'>, workspace: Workspace, rows: number): Promise<Float32Array> {
  await copyWorkspaceToPostgres(workspace, store);
  const dim = workspace.dim;
  const source = workspace.matrix();
  const matrix = new Float32Array(rows * dim);
  matrix.set(source.subarray(0, Math.min(rows, workspace.chunkCount) * dim));
  // A seeded LCG: the same synthetic rows every run.
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) + 0.5) / 2 ** 32;
  const pending: NewDoc[] = [];
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const perDoc = 8;
  for (let row = workspace.chunkCount, n = 0; row < rows; n++) {
    const count = Math.min(perDoc, rows - row);
    const vectors = matrix.subarray(row * dim, (row + count) * dim);
    for (let r = 0; r < count; r++) {
      const from = (row + r) % workspace.chunkCount;
      let norm = 0;
      for (let i = 0; i < dim; i++) {
        const v = source[from * dim + i] + 0.02 * gauss();
        vectors[r * dim + i] = v;
        norm += v * v;
      }
      for (let i = 0; i < dim; i++) vectors[r * dim + i] /= Math.sqrt(norm);
    }
    const chunks = Array.from({ length: count }, () => ({ kind: 'window' as const, box: { x: 0, y: 0, width: 224, height: 224 } }));
    pending.push({ path: `synthetic/${n}.jpg`, sha256: n.toString(16).padStart(64, '0'), bytes: 1, width: 224, height: 224, label: null, chunks, vectors });
    if (pending.length === 500 || row + count >= rows) await store.addDocs(pending.splice(0));
    row += count;
  }
  return matrix;
}
/** All chunks of QUERIES indexed docs spread over the workspace. */
export function pickQueries(workspace: Workspace): Float32Array[] {
  const docs = workspace.docs();
  const dim = workspace.dim;
  return Array.from({ length: QUERIES }, (_, i) => {
    const doc = docs[Math.floor((i * docs.length) / QUERIES)];
    return workspace.matrix().slice(doc.firstChunk * dim, (doc.firstChunk + doc.chunkCount) * dim);
  });
}

/** One query after another (as one client sends them; at once they would queue for the pool's connections). */
async function inTurn<T>(queries: Float32Array[], run: (q: Float32Array) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (const q of queries) out.push(await run(q));
  return out;
}

/** p50 / p95 over one pass of the queries, after a warm-up pass. */
export async function timed(queries: Float32Array[], run: (q: Float32Array) => Promise<unknown>): Promise<Latency> {
  for (const q of queries) await run(q);
  const times: number[] = [];
  for (const q of queries) {
    const start = performance.now();
    await run(q);
    times.push(performance.now() - start);
  }
  return { p50: percentile(times, 50), p95: percentile(times, 95) };
}

function recallOf(approx: Awaited<ReturnType<PostgresStore['topK']>>[], exact: Awaited<ReturnType<PostgresStore['topK']>>[]): number {
  let found = 0;
  let total = 0;
  approx.forEach((a, i) => {
    const e = exact[i];
    const ids = (hits: typeof a) => Array.from(hits.topk.ids, (slot) => (slot < 0 ? -1 : hits.chunkIds[slot]));
    const queries = e.topk.ids.length / K;
    const eIds = ids(e);
    const aIds = ids(a);
    for (let q = 0; q < queries; q++) {
      const truth = new Set(eIds.slice(q * K, (q + 1) * K).filter((id) => id >= 0));
      for (const id of aIds.slice(q * K, (q + 1) * K)) if (truth.has(id)) found++;
      total += truth.size;
    }
  });
  return found / total;
}

async function admin<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}
