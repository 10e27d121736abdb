/**
 * The index job queue: pg-boss 10 (its tables in the schema `flower_queue` of the store's own
 * database), so a fleet needs nothing but the Postgres it already shares.
 *
 *   const queue = await IndexQueue.open(url);
 *   await queue.enqueue(run, files, { jobSize: 32 });     // jobs of a few dozen files, one INSERT
 *   const job = await queue.fetch();                       // one job, marked active (SKIP LOCKED)
 *   await queue.complete(job, { indexed, chunks, skipped });
 *   await queue.runProgress(run);  await queue.fleetStatus();
 *
 * A job that is not completed within its timeout (its worker was killed, lost power or its network)
 * is failed by pg-boss's maintenance, which any process of the fleet runs every few seconds, and
 * retried after a backoff by whichever worker fetches it next; after `retryLimit` retries it stays
 * failed with the last reason. Writes are idempotent by content hash (PostgresStore.addDocs), so a
 * redone job writes nothing twice.
 */
import PgBoss from 'pg-boss';
import type pg from 'pg';
import { StoreUnavailableError } from '../../errors.js';
import { connectError, connectPool, redactUrl } from './connection.js';
import { SCHEMA } from './schema.js';

export const QUEUE_SCHEMA = 'flower_queue';
export const INDEX_QUEUE = 'flower-index';

export interface IndexJobFile {
  readonly path: string;
  readonly sha256: string;
  readonly label?: string;
}

export interface IndexJobData {
  /** The `index` run that planned the job. */
  readonly run: string;
  readonly files: readonly IndexJobFile[];
}

export interface IndexJobOutput {
  /** Files of the job whose content is in the store once the job is done (written now or by an earlier attempt). */
  readonly indexed: number;
  readonly chunks: number;
  /** Files that could not be indexed, with the reason (a bad image: no retry helps). */
  readonly skipped: readonly { file: string; reason: string }[];
  readonly worker: string;
}

export interface IndexJob {
  readonly id: string;
  readonly data: IndexJobData;
}

export interface EnqueueOptions {
  /** Files per job (default 32). */
  jobSize?: number;
  /** A job not completed this long after a worker took it is redone by another (default 300 s). */
  jobTimeoutSeconds?: number;
  /** Retries of a failed or timed-out job before it stays failed (default 8). */
  retryLimit?: number;
  /** First retry delay; doubled (with jitter) on each retry (default 2 s). */
  retryDelaySeconds?: number;
}

/** Files by job state, for one run or the whole queue. */
export interface QueueCounts {
  readonly jobs: number;
  readonly files: number;
  /** Files of jobs waiting for a worker (new, or to be retried). */
  readonly queued: number;
  /** Files of jobs a worker has taken. */
  readonly active: number;
  /** Files of completed jobs. */
  readonly done: number;
  /** Of `done`: in the store now. */
  readonly indexed: number;
  readonly chunks: number;
  /** Files of completed jobs that could not be indexed, and files of jobs that failed for good. */
  readonly failed: number;
  /** Jobs that failed for good (retries exhausted). */
  readonly failedJobs: number;
  /** Files of the jobs completed in the last minute, per second. */
  readonly imagesPerSecond: number;
}

export interface FileFailure {
  readonly file: string;
  readonly reason: string;
}

export interface FleetStatus {
  readonly store: { readonly docs: number; readonly chunks: number };
  readonly all: QueueCounts;
  /** The most recent run (by its first job), if any. */
  readonly latestRun?: { readonly run: string; readonly started: string; readonly counts: QueueCounts };
  /** Failures of the latest run (per file), at most `limit`, and how many there are. */
  readonly failures: readonly FileFailure[];
  readonly failureCount: number;
  /** Jobs of the latest run that failed and wait for another attempt: their files, attempts so far and the last error. */
  readonly retrying: readonly RetryingJob[];
}

export interface RetryingJob {
  readonly files: readonly string[];
  /** Attempts made so far, and how many it gets in all. */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly reason: string;
}

const DEFAULT_JOB_SIZE = 32;
const DEFAULT_JOB_TIMEOUT_S = 300;
const DEFAULT_RETRY_LIMIT = 8;
const DEFAULT_RETRY_DELAY_S = 2;
/** How often some process of the fleet fails timed-out jobs (pg-boss maintenance, one process at a time). */
const MAINTENANCE_INTERVAL_S = 5;
/** images/s is measured over the jobs completed in this window. */
const RATE_WINDOW_S = 60;

export class IndexQueue {
  readonly location: string;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly boss: PgBoss,
    location: string,
  ) {
    this.location = location;
  }

  /** Connect, create pg-boss's schema (or upgrade it) and the index queue if missing. */
  static async open(url: string, opts: { maxConnections?: number } = {}): Promise<IndexQueue> {
    const pool = await connectPool(url, { max: opts.maxConnections ?? 3 });
    const shown = redactUrl(url);
    const boss = new PgBoss({
      db: { executeSql: (text: string, values?: unknown[]) => pool.query(text, values) },
      schema: QUEUE_SCHEMA,
      schedule: false,
      maintenanceIntervalSeconds: MAINTENANCE_INTERVAL_S,
      // Completed jobs stay readable for status and summaries for a week.
      archiveCompletedAfterSeconds: 7 * 24 * 3600,
      deleteAfterDays: 30,
    });
    // Maintenance runs on a timer; while the server is down it fails, and the next tick retries.
    boss.on('error', () => undefined);
    try {
      await boss.start();
      if (!(await boss.getQueue(INDEX_QUEUE)))
        await boss.createQueue(INDEX_QUEUE).catch(async (err: unknown) => {
          // Two processes creating it at once: the loser finds it there.
          if (!(await boss.getQueue(INDEX_QUEUE))) throw err;
        });
    } catch (err) {
      await boss.stop({ graceful: false, wait: false }).catch(() => undefined);
      await pool.end().catch(() => undefined);
      throw asUnavailable(url, err);
    }
    return new IndexQueue(pool, boss, shown);
  }

  /** Split `files` into jobs of the run; returns how many jobs. */
  async enqueue(run: string, files: readonly IndexJobFile[], opts: EnqueueOptions = {}): Promise<number> {
    const jobSize = opts.jobSize ?? DEFAULT_JOB_SIZE;
    if (!Number.isInteger(jobSize) || jobSize < 1) throw new RangeError(`jobSize must be a positive integer, got ${jobSize}`);
    const jobs: PgBoss.JobInsert<IndexJobData>[] = [];
    for (let i = 0; i < files.length; i += jobSize) {
      jobs.push({
        name: INDEX_QUEUE,
        data: { run, files: files.slice(i, i + jobSize) },
        expireInSeconds: opts.jobTimeoutSeconds ?? DEFAULT_JOB_TIMEOUT_S,
        retryLimit: opts.retryLimit ?? DEFAULT_RETRY_LIMIT,
        retryDelay: opts.retryDelaySeconds ?? DEFAULT_RETRY_DELAY_S,
        retryBackoff: true,
      });
    }
    // One INSERT per few thousand jobs keeps each statement's JSON parameter a reasonable size.
    for (let i = 0; i < jobs.length; i += 2000) await this.boss.insert(jobs.slice(i, i + 2000));
    return jobs.length;
  }

  /**
   * Take the next job, or undefined when none is waiting. pg-boss's fetch reports a failed query as
   * "no job", so an empty answer is checked against the server: an unreachable one throws.
   */
  async fetch(): Promise<IndexJob | undefined> {
    this.assertOpen();
    const [job] = await this.boss.fetch<IndexJobData>(INDEX_QUEUE);
    if (job) return { id: job.id, data: job.data };
    await this.pool.query('SELECT 1');
    return undefined;
  }

  /** Mark a job done with its outcome (a no-op when it timed out meanwhile and went to another worker, whose outcome counts). */
  async complete(job: IndexJob, output: IndexJobOutput): Promise<void> {
    await this.boss.complete(INDEX_QUEUE, job.id, { ...output });
  }

  /** Give a job back as failed (retried later, up to its retry limit). */
  async fail(job: IndexJob, error: Error): Promise<void> {
    await this.boss.fail(INDEX_QUEUE, job.id, { message: error.message.split('\n')[0] });
  }

  /** Of these contents, those in the store, with their chunk counts. */
  async storedContent(sha256s: readonly string[]): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ sha256: string; chunk_count: number }>(`SELECT sha256, chunk_count FROM ${SCHEMA}.docs WHERE sha256 = ANY($1::text[])`, [sha256s]);
    return new Map(rows.map((r) => [r.sha256, r.chunk_count]));
  }

  /** Where one run stands, from its jobs (live and archived). */
  async runProgress(run: string): Promise<QueueCounts> {
    return countsOf((await this.pool.query<StateRow>(stateCountsSql("WHERE data->>'run' = $1"), [run])).rows);
  }

  /** The whole queue, the store's size, and the latest run with its failures per file. */
  async fleetStatus(opts: { failureLimit?: number } = {}): Promise<FleetStatus> {
    const limit = opts.failureLimit ?? 50;
    const [all, store, latest] = await Promise.all([
      this.pool.query<StateRow>(stateCountsSql('')),
      this.pool.query<{ docs: number; chunks: number | null }>(`SELECT count(*) AS docs, sum(chunk_count)::bigint AS chunks FROM ${SCHEMA}.docs`).catch(() => ({ rows: [{ docs: 0, chunks: 0 }] })),
      this.pool.query<{ run: string; started: Date }>(`SELECT data->>'run' AS run, min(created_on) AS started FROM (${jobsUnion()}) j GROUP BY 1 ORDER BY 2 DESC LIMIT 1`),
    ]);
    const latestRow = latest.rows[0];
    let failures: FileFailure[] = [];
    let failureCount = 0;
    let retrying: RetryingJob[] = [];
    let latestRun: FleetStatus['latestRun'];
    if (latestRow) {
      latestRun = { run: latestRow.run, started: latestRow.started.toISOString(), counts: await this.runProgress(latestRow.run) };
      ({ failures, failureCount } = await this.runFailures(latestRow.run, limit));
      retrying = await this.runRetrying(latestRow.run, limit);
    }
    return { store: { docs: store.rows[0].docs, chunks: store.rows[0].chunks ?? 0 }, all: countsOf(all.rows), latestRun, failures, failureCount, retrying };
  }

  /** A run's jobs waiting to be retried after a failure (a timeout or an error), with the last error. */
  async runRetrying(run: string, limit = Number.MAX_SAFE_INTEGER): Promise<RetryingJob[]> {
    const { rows } = await this.pool.query<{ files: string[]; attempts: number; max_attempts: number; reason: string }>(
      `SELECT ARRAY(SELECT f->>'path' FROM jsonb_array_elements(data->'files') f) AS files, retry_count + 1 AS attempts, retry_limit + 1 AS max_attempts,
              coalesce(output->>'message', output->'value'->>'message', 'unknown error') AS reason
         FROM ${QUEUE_SCHEMA}.job WHERE name = '${INDEX_QUEUE}' AND data->>'run' = $1 AND state = 'retry' AND output IS NOT NULL
        ORDER BY created_on, id LIMIT $2`,
      [run, limit],
    );
    return rows.map((r) => ({ files: r.files, attempts: r.attempts, maxAttempts: r.max_attempts, reason: r.reason }));
  }

  /** A run's failures per file: bad files of completed jobs, and every file of a job that failed for good (with its last error). */
  async runFailures(run: string, limit = Number.MAX_SAFE_INTEGER): Promise<{ failures: FileFailure[]; failureCount: number }> {
    const { rows } = await this.pool.query<FileFailure & { total: number }>(
      `WITH f AS (
         SELECT s->>'file' AS file, s->>'reason' AS reason FROM (${jobsUnion()}) j, jsonb_array_elements(j.output->'skipped') s
          WHERE j.data->>'run' = $1 AND j.state = 'completed'
         UNION ALL
         SELECT f->>'path', 'job failed after ' || (j.retry_count + 1) || ' attempts: ' || coalesce(j.output->>'message', j.output->'value'->>'message', 'unknown error')
           FROM (${jobsUnion()}) j, jsonb_array_elements(j.data->'files') f
          WHERE j.data->>'run' = $1 AND j.state = 'failed'
       )
       SELECT file, reason, count(*) OVER ()::int AS total FROM f ORDER BY file LIMIT $2`,
      [run, limit],
    );
    return { failures: rows.map(({ file, reason }) => ({ file, reason })), failureCount: rows[0]?.total ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.boss.stop({ graceful: false, wait: true, close: false }).catch(() => undefined);
    await this.pool.end();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`queue at ${this.location} is closed`);
  }
}

/**
 * Whether an error means the server went away (restart, crash, network) rather than a problem with
 * the request: what a worker waits out.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return true;
  // SQLSTATE 08xxx: connection exceptions; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
  if (/^08|^57P0[123]$/.test(code)) return true;
  return /Connection terminated|terminating connection|not queryable|connection error|Client was closed|timeout exceeded when trying to connect/i.test(e?.message ?? '');
}

interface StateRow {
  state: string;
  jobs: number;
  files: number;
  indexed: number;
  chunks: number;
  skipped: number;
  recent: number;
  span: number;
}

/** Live jobs and archived ones (pg-boss moves completed jobs to `archive` after a while). */
function jobsUnion(): string {
  const columns = 'data, output, state, retry_count, created_on, started_on, completed_on';
  return `SELECT ${columns} FROM ${QUEUE_SCHEMA}.job WHERE name = '${INDEX_QUEUE}' UNION ALL SELECT ${columns} FROM ${QUEUE_SCHEMA}.archive WHERE name = '${INDEX_QUEUE}'`;
}

function stateCountsSql(where: string): string {
  return `SELECT state::text AS state, count(*)::int AS jobs, coalesce(sum(jsonb_array_length(data->'files')), 0)::int AS files,
      coalesce(sum((output->>'indexed')::int) FILTER (WHERE state = 'completed'), 0)::int AS indexed,
      coalesce(sum((output->>'chunks')::int) FILTER (WHERE state = 'completed'), 0)::int AS chunks,
      coalesce(sum(jsonb_array_length(output->'skipped')) FILTER (WHERE state = 'completed'), 0)::int AS skipped,
      coalesce(sum(jsonb_array_length(data->'files')) FILTER (WHERE state = 'completed' AND completed_on > now() - interval '${RATE_WINDOW_S} seconds'), 0)::int AS recent,
      extract(epoch FROM now() - min(started_on) FILTER (WHERE state = 'completed' AND completed_on > now() - interval '${RATE_WINDOW_S} seconds'))::float8 AS span
    FROM (${jobsUnion()}) j ${where} GROUP BY state`;
}

function countsOf(rows: readonly StateRow[]): QueueCounts {
  const by = new Map(rows.map((r) => [r.state, r]));
  const files = (state: string) => by.get(state)?.files ?? 0;
  const completed = by.get('completed');
  return {
    jobs: rows.reduce((n, r) => n + r.jobs, 0),
    files: rows.reduce((n, r) => n + r.files, 0),
    queued: files('created') + files('retry'),
    active: files('active'),
    done: files('completed'),
    indexed: completed?.indexed ?? 0,
    chunks: completed?.chunks ?? 0,
    failed: (completed?.skipped ?? 0) + files('failed'),
    failedJobs: by.get('failed')?.jobs ?? 0,
    // Over the window, or since the first of those jobs started when that is more recent (a young run).
    imagesPerSecond: completed?.recent ? completed.recent / Math.min(RATE_WINDOW_S, Math.max(1, completed.span)) : 0,
  };
}

function asUnavailable(url: string, err: unknown): Error {
  const mapped = connectError(url, err);
  if (mapped instanceof StoreUnavailableError) return mapped;
  return new StoreUnavailableError(redactUrl(url), `cannot set up the job queue in ${redactUrl(url)}: ${(err as Error).message?.split('\n')[0] ?? String(err)}`, { cause: err });
}
