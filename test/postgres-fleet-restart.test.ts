/**
 * PostgreSQL stopped and started again under a running fleet: the index process and a worker wait
 * (bounded retries, backoff, a line saying so) and finish; nothing is lost or written twice. The
 * test restarts a throwaway cluster of its own (.ci/postgres.sh start / restart), so the other
 * Postgres tests running at the same time on the shared one are not cut off.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { projectRoot } from '../bench/fixtures.js';
import { indexImages } from '../src/flows/indexing.js';
import { makeDataDir, modelDir, subset, tempDir } from './e2e-helpers.js';
import { postgresTest } from './helpers/postgres.js';
import { assertStoreEqualsWorkspace, pgQuery, startCli } from './helpers/pg-fleet.js';

const test = postgresTest('postgres-fleet-restart');
const script = path.join(projectRoot, '.ci', 'postgres.sh');
const run = promisify(execFile);

test('Postgres restarted mid-run: the fleet waits, resumes and the store equals a local index', async (t) => {
  t.timeout(240_000);
  // Right under the temp folder: the postgres user must reach it (a mkdtemp folder is the test user's alone).
  const cluster = path.join(os.tmpdir(), `flower-fleet-pg-${randomBytes(4).toString('hex')}`);
  const url = (await run('bash', [script, 'start', cluster])).stdout.trim();
  t.teardown(() => run('bash', [script, 'stop', cluster]).then(() => undefined));
  const data = await makeDataDir(subset(2, 8));
  const workspace = await tempDir('fleet-local');
  await indexImages({ data, workspace, model: modelDir, replicas: 1 });

  const index = startCli(t, ['index', '--data', data, '--store', url, '--model', modelDir, '--replicas', '1', '--job-size', '2', '--job-timeout', '30']);
  const worker = startCli(t, ['worker', '--store', url, '--model', modelDir, '--replicas', '1']);
  // Restart once the run is under way: some jobs done, some not.
  for (;;) {
    const [row] = await pgQuery<{ done: number }>(url, `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done FROM flower_queue.job`).catch(() => [{ done: 0 }]);
    if (row.done >= 2) break;
    t.is(index.child.exitCode, null, index.output());
    await sleep(200);
  }
  await run('bash', [script, 'restart', cluster, '4']);
  t.is(await index.exited, 0, index.output());
  t.regex(index.output() + worker.output(), /PostgreSQL at postgres:\/\/\S+ is unreachable \(.+\): retrying in \d+ s \(try 1 of 10\)/);
  t.regex(index.output(), /indexed 16 images/);
  worker.child.kill('SIGTERM');
  t.is(await worker.exited, 0, worker.output());
  await assertStoreEqualsWorkspace(t, url, workspace);
  const states = await pgQuery<{ state: string; n: number }>(url, `SELECT state::text, count(*)::int AS n FROM flower_queue.job GROUP BY 1`);
  t.deepEqual(states, [{ state: 'completed', n: 8 }]);
});
