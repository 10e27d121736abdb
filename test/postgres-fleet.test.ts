/**
 * The index fleet against a real Postgres: `index --store` with worker processes beside it, one of
 * them SIGKILLed again and again; bad images; a job that fails every time.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { indexImagesIntoPostgres } from '../src/flows/fleet.js';
import { indexIdentity, indexImages } from '../src/flows/indexing.js';
import { makeDataDir, modelDir, runCli, subset, tempDir, writeBadFiles } from './e2e-helpers.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';
import { assertStoreEqualsWorkspace, pgQuery, startCli, type Proc } from './helpers/pg-fleet.js';
import { prng } from './helpers/prng.js';

const test = postgresTest('postgres-fleet');

test('index with 2 workers beside it, one SIGKILLed 5 times at random moments: the store equals a local index of the same files', async (t) => {
  t.timeout(240_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(3, 8));
  const workspace = await tempDir('fleet-local');
  await indexImages({ data, workspace, model: modelDir, replicas: 1 });

  const worker = () => startCli(t, ['worker', '--store', url, '--model', modelDir, '--replicas', '1']);
  // Jobs of 2 images; a killed worker's job is redone 15 s after it was taken.
  const index = startCli(t, ['index', '--data', data, '--store', url, '--model', modelDir, '--replicas', '1', '--job-size', '2', '--job-timeout', '15']);
  const steady = worker();
  let victim: Proc = worker();
  const random = prng(13);
  const kills: number[] = [];
  for (let i = 0; i < 5 && index.child.exitCode === null; i++) {
    const after = 1500 + Math.floor(random() * 3000);
    await sleep(after);
    victim.child.kill('SIGKILL');
    await victim.exited;
    kills.push(after);
    victim = worker();
  }
  const code = await index.exited;
  t.is(code, 0, index.output());
  t.is(kills.length, 5, `the run outlived the 5 kills (at ${kills.join(', ')} ms)`);
  t.regex(index.output(), /indexed 24 images/);
  for (const p of [steady, victim]) p.child.kill('SIGTERM');
  await Promise.all([steady.exited, victim.exited]);
  await assertStoreEqualsWorkspace(t, url, workspace);
  // Every job done, none given up on, and the kills did cost jobs (redone after their timeout).
  const states = await pgQuery<{ state: string; n: number; redone: number }>(
    url,
    `SELECT state::text, count(*)::int AS n, count(*) FILTER (WHERE retry_count > 0)::int AS redone FROM flower_queue.job GROUP BY 1`,
  );
  t.like(states, [{ state: 'completed', n: 12 }]);
  t.true(states[0].redone >= 1, `a killed worker's job was redone (${states[0].redone} jobs)`);
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

test('a job that fails every time is retried a bounded number of times, then stays failed with its reason', async (t) => {
  t.timeout(120_000);
  const { url } = await createTestDatabase(t);
  const data = await makeDataDir(subset(1, 2));
  // A flow whose extra pod throws (not a skip) on one file: the job fails, whoever runs it.
  const dir = await tempDir('fleet-flow');
  const flow = path.join(dir, 'index.yml');
  await fs.writeFile(path.join(dir, 'breaker.js'), `export default class { process(doc) { if (doc.uri.endsWith('image_0001.jpg')) throw new Error('breaker: refused ' + doc.uri); } }\n`);
  const shipped = await fs.readFile(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'flows', 'index.yml'), 'utf8');
  await fs.writeFile(flow, `${shipped}\n  breaker:\n    uses: ./breaker.js\n    needs: join\n`);
  const summary = await indexImagesIntoPostgres({ data, store: url, model: modelDir, flow, identity: indexIdentity, replicas: 1, jobSize: 1, retryLimit: 2, pollMs: 200 });
  t.is(summary.indexed, 1);
  const failure = summary.skipped.find((s) => s.file.endsWith('image_0001.jpg'));
  t.regex(failure?.reason ?? 'missing', /^job failed after 3 attempts: breaker: refused/);
  const jobs = await pgQuery<{ state: string; retry_count: number }>(url, `SELECT state::text, retry_count FROM flower_queue.job ORDER BY state`);
  t.deepEqual(jobs, [
    { state: 'completed', retry_count: 0 },
    { state: 'failed', retry_count: 2 },
  ]);
});
