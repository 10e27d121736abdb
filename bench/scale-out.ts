/**
 * Scale-out: ingest. Images/s of the fleet (`index --store postgres://… --no-work` enqueues, then 1
 * or 2 `worker` processes on this machine share the jobs), measured on the queue from the first
 * job taken to the last one completed (model loading left out); COPY rows/s of PostgresStore.addDocs
 * (synthetic 1280-d chunk rows, jobs of 32 docs × 6 chunks); and from those the number of 2-core
 * worker machines one primary can feed. Needs FLOWER_BENCH_PG_URL (or FLOWER_TEST_PG_URL).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres/index.js';
import type { NewDoc } from '../src/store/index.js';
import { flowerImage, modelDir, projectRoot } from './fixtures.js';
import type { SectionOptions, SectionResult } from './section.js';
import { markdownTable } from './stats.js';

const runFile = promisify(execFile);
const DIM = 1280;
const cliPath = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

/** A folder with `perClass` fixture images of each of the first `classes` classes. */
async function fixtureFolder(classes: number, perClass: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flower-bench-scale-out-'));
  for (let c = 0; c < classes; c++) {
    for (let i = 1; i <= perClass; i++) await fs.copyFile(flowerImage(c * 80 + i), path.join(dir, path.basename(flowerImage(c * 80 + i))));
  }
  return dir;
}

async function withDatabase<T>(adminUrl: string, work: (url: string) => Promise<T>): Promise<T> {
  const name = `flower_bench_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await admin(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return await work(url.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/** Index `data` with `processes` worker processes of `replicas` encoder threads each; images/s over the jobs' span. */
async function ingest(adminUrl: string, data: string, processes: number, replicas: number): Promise<{ images: number; seconds: number; imagesPerSecond: number; chunks: number }> {
  return withDatabase(adminUrl, async (url) => {
    // `index --no-work` follows the run until it ends; here it only needs to enqueue, so the workers start once the jobs are there.
    const planner = spawn(process.execPath, [cliPath, 'index', '--data', data, '--store', url, '--model', modelDir, '--no-work', '-q'], { stdio: 'ignore' });
    const plannerExited = new Promise((resolve) => planner.once('exit', resolve));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    for (;;) {
      try {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM flower_queue.job`);
        if (rows[0].n > 0) break;
      } catch {
        // the queue's tables are not there yet
      }
      await sleep(200);
    }
    const workers = Array.from({ length: processes }, () =>
      runFile(process.execPath, [cliPath, 'worker', '--store', url, '--model', modelDir, '--replicas', String(replicas), '--exit-when-idle', '-q'], { maxBuffer: 16 << 20 }),
    );
    await Promise.all(workers);
    await plannerExited;
    const { rows } = await client.query<{ images: number; seconds: number; chunks: number }>(
      `SELECT sum(jsonb_array_length(data->'files'))::int AS images, extract(epoch FROM max(completed_on) - min(started_on))::float8 AS seconds,
              sum((output->>'chunks')::int)::int AS chunks FROM flower_queue.job WHERE state = 'completed'`,
    );
    await client.end();
    const r = rows[0];
    return { ...r, imagesPerSecond: r.images / r.seconds };
  });
}

/** addDocs of synthetic jobs: chunk rows per second through one connection. */
async function copyRate(adminUrl: string, jobs: number): Promise<{ rows: number; seconds: number; rowsPerSecond: number }> {
  return withDatabase(adminUrl, async (url) => {
    const store = await PostgresStore.openForWrite(url, { model: { name: 'bench', sha256: 'b'.repeat(64), dim: DIM }, chunking: { bench: true } });
    const makeJob = (j: number): NewDoc[] =>
      Array.from({ length: 32 }, (_, i) => {
        const vectors = new Float32Array(6 * DIM);
        for (let r = 0; r < 6; r++) {
          let norm = 0;
          for (let k = 0; k < DIM; k++) norm += (vectors[r * DIM + k] = Math.random() - 0.5) ** 2;
          for (let k = 0; k < DIM; k++) vectors[r * DIM + k] /= Math.sqrt(norm);
        }
        const sha256 = (BigInt(j * 32 + i) + 1n).toString(16).padStart(64, '0');
        return {
          path: `/bench/${j}/${i}.jpg`,
          sha256,
          bytes: 1000,
          width: 500,
          height: 400,
          chunks: Array.from({ length: 6 }, (_, r) => ({ kind: r === 5 ? 'whole' : 'window', box: { x: r, y: 0, width: 224, height: 224 } })),
          vectors,
        };
      });
    const prepared = Array.from({ length: jobs }, (_, j) => makeJob(j));
    const start = performance.now();
    for (const job of prepared) await store.addDocs(job);
    const seconds = (performance.now() - start) / 1000;
    await store.close();
    const rows = jobs * 32 * 6;
    return { rows, seconds, rowsPerSecond: rows / seconds };
  });
}

export async function benchScaleOut(options: SectionOptions): Promise<SectionResult> {
  const adminUrl = process.env.FLOWER_BENCH_PG_URL ?? process.env.FLOWER_TEST_PG_URL;
  if (!adminUrl) throw new Error('set FLOWER_BENCH_PG_URL (or FLOWER_TEST_PG_URL) to a PostgreSQL with pgvector: `url=$(bash .ci/postgres.sh start /tmp/pg)`');
  const data = await fixtureFolder(options.quick ? 4 : 8, options.quick ? 12 : 15);
  options.log('scale-out: 1 worker process (2 encoder threads)…');
  const one = await ingest(adminUrl, data, 1, 2);
  options.log('scale-out: 2 worker processes (1 encoder thread each)…');
  const two = await ingest(adminUrl, data, 2, 1);
  options.log('scale-out: COPY rows/s…');
  const copy = await copyRate(adminUrl, options.quick ? 20 : 60);
  const chunksPerImage = one.chunks / one.images;
  const perMachine = Math.max(one.imagesPerSecond, two.imagesPerSecond);
  const machines = copy.rowsPerSecond / (perMachine * chunksPerImage);
  const data_ = { ingest: { oneProcess: one, twoProcesses: two }, copy, chunksPerImage, machinesOnePrimaryFeeds: machines };
  const markdown = [
    markdownTable(
      ['ingest (this machine)', 'images', 'seconds', 'images/s'],
      [
        ['1 worker process × 2 encoder threads', String(one.images), one.seconds.toFixed(1), one.imagesPerSecond.toFixed(1)],
        ['2 worker processes × 1 encoder thread', String(two.images), two.seconds.toFixed(1), two.imagesPerSecond.toFixed(1)],
      ],
    ),
    '',
    `COPY into Postgres (addDocs, 32 docs × 6 rows of ${DIM}-d per transaction, one connection): ${copy.rows} rows in ${copy.seconds.toFixed(1)} s = ${copy.rowsPerSecond.toFixed(0)} rows/s.`,
    `On these cores the encoder is the limit (2 processes share the same 2 cores as 1). At ${chunksPerImage.toFixed(1)} chunks per image, one primary absorbing ${copy.rowsPerSecond.toFixed(0)} rows/s feeds about ${machines.toFixed(0)} worker machines like this one (${perMachine.toFixed(1)} images/s each), on one write connection; the test cluster runs with fsync off, so a durable primary's figure is lower.`,
  ].join('\n');
  return { data: data_, markdown };
}
