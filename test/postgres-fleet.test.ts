/**
 * The index fleet against a real Postgres: `index --store` with worker processes beside it, one of
 * them SIGKILLed again and again; bad images; a job that fails every time.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { indexImagesIntoPostgres, workIndexJobs } from '../src/flows/fleet.js';
import { IndexQueue } from '../src/store/postgres/queue.js';
import { indexIdentity, indexImages } from '../src/flows/indexing.js';
import { flowerImage } from '../bench/fixtures.js';
import { makeDataDir, modelDir, runCli, subset, tempDir, writeBadFiles } from './e2e-helpers.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';
import { assertStoreEqualsWorkspace, jobInHand, pgQuery, startCli, waitFor } from './helpers/pg-fleet.js';
import { prng } from './helpers/prng.js';

const test = postgresTest('postgres-fleet');

test('index with 2 workers beside it, a worker SIGKILLed 5 times at seeded moments of its jobs: the store equals a local index of the same files', async (t) => {
  t.timeout(600_000);
  const { url } = await createTestDatabase(t);
  const images = subset(3, 8);
  const data = await makeDataDir(images);
  const workspace = await tempDir('fleet-local');
  await indexImages({ data, workspace, model: modelDir, replicas: 1 });

  const worker = () => startCli(t, ['worker', '--store', url, '--model', modelDir, '--replicas', '1']);
  // Jobs of 2 images, 12 in all; a killed worker's job is redone once its 10 s timeout has passed
  // (pg-boss's maintenance looks every 5 s). The index process plans, enqueues and follows the
  // fleet (--no-work): only the two workers take jobs, so a killed worker's job comes back to a
  // worker and the run cannot end before the fifth kill.
  const index = startCli(t, ['index', '--data', data, '--store', url, '--model', modelDir, '--replicas', '1', '--no-work', '--job-size', '2', '--job-timeout', '10']);
  const workers = [worker(), worker()];
  const random = prng(13);
  const kills: { job: string; after: number; state: string }[] = [];
  for (let i = 0; i < 5; i++) {
    // A worker with a job in hand (seeded choice when both have one), killed a seeded 0-400 ms into it.
    const holders = await waitFor(
      `a worker with a job in hand (kill ${i + 1})`,
      () => {
        const busy = workers.filter((w) => jobInHand(w) !== undefined);
        return busy.length ? busy : undefined;
      },
      { timeoutMs: 180_000, alive: [index, ...workers] },
    );
    const victim = holders[Math.floor(random() * holders.length)];
    const job = jobInHand(victim)!;
    const after = Math.floor(random() * 400);
    await sleep(after);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const [row] = await pgQuery<{ state: string }>(url, 'SELECT state::text FROM flower_queue.job WHERE id = $1', [job]);
    kills.push({ job, after, state: row?.state ?? 'archived' });
    workers[workers.indexOf(victim)] = worker();
  }
  t.log(`kills: ${kills.map((k) => `${k.after} ms into job ${k.job.slice(0, 8)} (then ${k.state})`).join('; ')}`);
  const code = await index.exited;
  t.is(code, 0, index.output());
  t.regex(index.output(), /indexed 24 images/);
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  await assertStoreEqualsWorkspace(t, url, workspace);
  // Every job done, none given up on; each kill that caught its job unfinished cost a redo.
  const states = await pgQuery<{ state: string; n: number; redone: number }>(
    url,
    `SELECT state::text, count(*)::int AS n, count(*) FILTER (WHERE retry_count > 0)::int AS redone FROM flower_queue.job GROUP BY 1`,
  );
  t.deepEqual(
    states.map(({ state, n }) => ({ state, n })),
    [{ state: 'completed', n: 12 }],
  );
  const caught = new Set(kills.filter((k) => k.state === 'active').map((k) => k.job)).size;
  t.true(caught >= 1, `at least one kill caught its job unfinished (${JSON.stringify(kills)})`);
  t.true(states[0].redone >= caught, `every job a kill caught unfinished was redone (${states[0].redone} redone, ${caught} caught)`);
  // Every doc is found as itself.
  const found = await runCli(['query', ...images.map((n) => path.join(data, 'jpg', path.basename(flowerImage(n)))), '--store', url, '--model', modelDir, '--top', '1', '--json']);
  t.is(found.code, 0, found.stderr);
  const { queries } = JSON.parse(found.stdout) as { queries: { query: string; results: { path: string }[] }[] };
  t.deepEqual(
    queries.filter((q) => q.results[0]?.path !== path.resolve(q.query)).map((q) => q.query),
    [],
    'each image is its own top result',
  );
});

test('bad images: each file with its reason in the summary and in status, and their jobs are not retried', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(1, 3));
  const bad = await writeBadFiles(data);
  const indexed = await runCli(['index', '--data', data, '--store', url, '--model', modelDir, '--replicas', '1', '--job-size', '4']);
  t.is(indexed.code, 0, indexed.stderr);
  t.regex(indexed.stdout, /indexed 3 images/);
  for (const { file, reason } of bad) t.regex(indexed.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${reason.source}`));
  const status = await runCli(['status', '--store', url, '--json']);
  t.is(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout) as { failures: { file: string; reason: string }[]; failureCount: number; latestRun: { counts: { done: number; failed: number; indexed: number } } };
  t.is(parsed.failureCount, bad.length);
  for (const { file, reason } of bad) t.regex(parsed.failures.find((f) => f.file === file)?.reason ?? 'missing', reason);
  t.like(parsed.latestRun.counts, { done: 3 + bad.length, failed: bad.length, indexed: 3 });
  const jobs = await pgQuery<{ state: string; retry_count: number }>(url, 'SELECT state::text, retry_count FROM flower_queue.job');
  t.true(jobs.length >= 2 && jobs.every((j) => j.state === 'completed' && j.retry_count === 0), JSON.stringify(jobs));
  const text = await runCli(['status', '--store', url]);
  t.regex(text.stdout, new RegExp(`failures of the latest run \\(${bad.length}\\)`));
});

/** The shipped index flow with an extra pod that throws (not a skip) on image_0001.jpg: its job fails, whoever runs it. */
async function breakerFlow(): Promise<string> {
  const dir = await tempDir('fleet-flow');
  const flow = path.join(dir, 'index.yml');
  await fs.writeFile(path.join(dir, 'breaker.js'), `export default class { process(doc) { if (doc.uri.endsWith('image_0001.jpg')) throw new Error('breaker: refused ' + doc.uri); } }\n`);
  const shipped = await fs.readFile(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'flows', 'index.yml'), 'utf8');
  await fs.writeFile(flow, `${shipped}\n  breaker:\n    uses: ./breaker.js\n    needs: join\n`);
  return flow;
}

test('status shows a job waiting to be retried with its attempts and last error', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(1, 1));
  const file = path.join(data, 'jpg', 'image_0001.jpg');
  const flow = await breakerFlow();
  const queue = await IndexQueue.open(url);
  try {
    await queue.enqueue('run-1', [{ path: file, sha256: '0'.repeat(64) }], { retryLimit: 2, retryDelaySeconds: 3600 });
  } finally {
    await queue.close();
  }
  // A worker runs the job once; it fails and waits an hour for its next attempt, so the worker finds nothing more to do.
  const summary = await workIndexJobs({ store: url, model: modelDir, flow, replicas: 1, done: () => true });
  t.is(summary.failedJobs, 1);
  const status = await runCli(['status', '--store', url]);
  t.is(status.code, 0, status.stderr);
  t.true(status.stdout.includes(`jobs waiting to be retried (1):\n  ${file}: attempt 1 of 3 failed: breaker: refused ${file}`), status.stdout);
});

test('a job that fails every time is retried a bounded number of times, then stays failed with its reason', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(1, 2));
  const flow = await breakerFlow();
  const summary = await indexImagesIntoPostgres({ data, store: url, model: modelDir, flow, identity: indexIdentity, replicas: 1, jobSize: 1, retryLimit: 2, pollMs: 200 });
  t.is(summary.indexed, 1);
  const failure = summary.skipped.find((s) => s.file.endsWith('image_0001.jpg'));
  t.regex(failure?.reason ?? 'missing', /^job failed after 3 attempts: breaker: refused/);
  // status shows the job that gave up, with its reason, from any machine.
  const status = await runCli(['status', '--store', url]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /\(1 jobs gave up\)/);
  t.regex(status.stdout, /image_0001\.jpg: job failed after 3 attempts: breaker: refused/);
  const jobs = await pgQuery<{ state: string; retry_count: number }>(url, `SELECT state::text, retry_count FROM flower_queue.job ORDER BY state`);
  t.deepEqual(jobs, [
    { state: 'completed', retry_count: 0 },
    { state: 'failed', retry_count: 2 },
  ]);
});
