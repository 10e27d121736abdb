/**
 * Indexing into a Postgres store with a fleet of workers:
 *
 * - `planPostgresIndex` / `indexImagesIntoPostgres` (what `index --store postgres://…` runs): list
 *   and hash the folder, reconcile the listing with the store (moves, deletions, contents it
 *   already has), enqueue the rest as jobs of a few dozen files, work on them here too unless told
 *   not to, and follow the whole fleet's progress on the run until every job is done or failed.
 * - `workIndexJobs` (what `worker` runs, and `index` in-process): take a job, run its files through
 *   the index flow (loader, decoder, chunker, the encoder pool), write its docs and chunks in one
 *   transaction (PostgresStore.addDocs: COPY, idempotent by content), mark it done with what
 *   happened to each file. A lost server is waited out with bounded retries and backoff.
 * - `fleetStatus`: the queue and the store, as `status` shows them.
 */
import { randomUUID, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isHttpUrl, listImages, readLabelsCsv, readUrlList } from '../dataset/index.js';
import { fetchBytes } from '../download/index.js';
import { StoreUnavailableError } from '../errors.js';
import type { BuiltinServices } from '../executors/services.js';
import { loadModel, type LoadedModel, type ModelManifest } from '../model/index.js';
import type { ModelIdentity, NewDoc } from '../store/index.js';
import { EXACT_BELOW_CHUNKS } from '../search/postgres-index.js';
import { PostgresStore, type HnswOptions, type ListedFile } from '../store/postgres/index.js';
import { IndexQueue, isConnectionLoss, type EnqueueOptions, type FleetStatus, type IndexJob, type IndexJobFile, type IndexJobOutput, type QueueCounts } from '../store/postgres/queue.js';
import { indexIdentity, indexSummary, type IndexOptions, type IndexProgress, type IndexSummary } from './index-run.js';
import { RunningFlow } from './runner.js';
import { resolveDataDir, resolveModelDir } from './sources.js';
import { flowFile, loadFlow, type FlowSpec } from './spec.js';

export type { FleetStatus, QueueCounts } from '../store/postgres/queue.js';

/** Whether `store` names a Postgres store rather than a workspace folder. */
export function isPostgresUrl(store: unknown): store is string {
  return typeof store === 'string' && /^postgres(ql)?:\/\//i.test(store);
}

export interface ServerWaitOptions {
  /** Tries before giving up on a lost server (default 10: about 2 minutes with the backoff). */
  attempts?: number;
  /** First wait, doubled each try up to 20 s (default 1000 ms). */
  firstDelayMs?: number;
  /** Told each time the server is found gone, with the wait before the next try. */
  onWait?: (message: string) => void;
}

/** What a store records of the model and chunking that built it (default: index-run.ts's indexIdentity). */
export type IdentityOf = (spec: FlowSpec, model: ModelManifest) => { model: ModelIdentity; chunking: Record<string, unknown> };

export interface WorkerOptions extends ServerWaitOptions {
  store: string;
  identity?: IdentityOf;
  model?: string;
  flow?: string;
  /** Encoder workers, overriding the flow's `replicas`. */
  replicas?: number;
  batchSize?: number;
  /** Seconds between polls of an empty queue (default 1). */
  pollSeconds?: number;
  /** Checked when the queue is empty: true ends the loop (default: never, a worker waits for work). */
  done?: () => boolean | Promise<boolean>;
  signal?: AbortSignal;
  /** A job this worker has just taken (before any of its work). */
  onTake?: (job: IndexJob) => void;
  /** After every job this worker finished. */
  onJob?: (job: IndexJob, output: IndexJobOutput) => void;
  /** A job that failed here (it is retried, up to its limit). */
  onJobError?: (job: IndexJob, error: Error) => void;
  /** Name in the jobs' output (default host:pid). */
  name?: string;
}

export interface WorkerSummary {
  readonly jobs: number;
  readonly indexed: number;
  readonly chunks: number;
  readonly skipped: number;
  readonly failedJobs: number;
  readonly seconds: number;
}

/** indexImages's options (index-run.ts), as a Postgres run takes them: its progress is the whole fleet's. */
export interface PostgresIndexOptions extends ServerWaitOptions, Pick<EnqueueOptions, 'jobSize' | 'jobTimeoutSeconds' | 'retryLimit'>, Omit<IndexOptions, 'workspace' | 'rebuild'> {
  /** postgres:// URL of the store. */
  store: string;
  identity?: IdentityOf;
  /** Work on the jobs in this process too (default true); the run is followed to its end either way. */
  work?: boolean;
  /** Milliseconds between progress polls of the fleet (default 500). */
  pollMs?: number;
  /**
   * Once the store holds this many chunks and has no HNSW index, the run ends by building it (then
   * every insert keeps it up to date). Default EXACT_BELOW_CHUNKS: where queries switch from exact to HNSW.
   */
  hnswFromChunks?: number;
  /** The HNSW build's graph settings and memory (default: pgvector's m 16, ef_construction 64; the server's maintenance_work_mem). */
  hnsw?: HnswOptions;
  /** One line about what the run did beyond indexing (the HNSW build). */
  onNotice?: (message: string) => void;
}

/** Concurrent file reads while hashing the listing. */
const HASH_CONCURRENCY = 8;

/**
 * `index --store postgres://…`: plan, enqueue, work (unless `work: false`) and follow the run.
 * The summary is the local one's: `workspace` is the store's (masked) URL.
 */
export async function indexImagesIntoPostgres(opts: PostgresIndexOptions): Promise<IndexSummary> {
  const started = performance.now();
  const dataDir = await resolveDataDir(opts.data, opts.download);
  const modelDir = await resolveModelDir(opts.model, opts.download);
  const spec = await loadFlow(flowFile('index', opts.flow));
  const model = await loadModel(modelDir);
  const store = await PostgresStore.openForWrite(opts.store, (opts.identity ?? indexIdentity)(spec, model));
  let queue: IndexQueue | undefined;
  try {
    queue = await IndexQueue.open(opts.store);
    // --data is a folder, or a text file of http(s) URLs (every worker then reads the images over HTTP).
    const urlList = fs.statSync(dataDir, { throwIfNoEntry: false })?.isFile() === true;
    const { files, skipped: unwalkable } = urlList ? { files: await readUrlList(dataDir), skipped: [] } : await listImages(dataDir);
    const { listing, unreadable } = await hashFiles(files);
    // A file that cannot be read now keeps its doc: its content is unknown, not gone.
    if (unreadable.length) {
      const byPath = new Map((await store.listDocs()).map((d) => [d.path, d.sha256]));
      for (const { file } of unreadable) if (byPath.has(file)) listing.push({ path: file, sha256: byPath.get(file)! });
    }
    // A URL list need not cover the store: the docs of URLs it no longer lists are kept.
    const plan = await store.reconcile(listing, { keepMissing: opts.keepMissing || urlList, under: urlList ? undefined : dataDir });
    const chosen = new Map(plan.toIndex.map((f) => [f.sha256, f.path]));
    const duplicates = listing.filter((f) => chosen.has(f.sha256) && chosen.get(f.sha256) !== f.path).map((f) => ({ file: f.path, reason: `same content as ${chosen.get(f.sha256)}` }));
    const unchanged = listing.length - plan.toIndex.length - duplicates.length - unreadable.filter(({ file }) => listing.some((f) => f.path === file)).length;
    const labelsFile = path.join(dataDir, 'labels.csv');
    const labels = fs.existsSync(labelsFile) ? readLabelsCsv(labelsFile) : undefined;
    const run = `${new Date().toISOString()}-${randomUUID().slice(0, 8)}`;
    const jobFiles: IndexJobFile[] = plan.toIndex.map((f) => ({ ...f, ...(labels?.has(f.path) && { label: labels.get(f.path) }) }));
    await queue.enqueue(run, jobFiles, opts);

    const followed = queue;
    let counts = await followed.runProgress(run);
    const finished = (c: QueueCounts) => c.queued + c.active === 0;
    const settledBefore = unchanged + duplicates.length + unreadable.length;
    const report = (c: QueueCounts) =>
      opts.onProgress?.({
        total: files.length,
        done: settledBefore + c.done + failedJobFiles(c),
        indexed: c.indexed,
        unchanged,
        skipped: duplicates.length + unreadable.length + c.failed,
        chunks: c.chunks,
        elapsedMs: performance.now() - started,
      } satisfies IndexProgress);
    const follow = async () => {
      while (!finished(counts)) {
        report(counts);
        await sleep(opts.pollMs ?? 500);
        counts = await waitForServer(store.location, () => followed.runProgress(run), opts);
      }
      report(counts);
    };
    if (opts.work === false) await follow();
    else {
      await Promise.all([
        follow(),
        workIndexJobs({
          ...opts,
          store: opts.store,
          model: modelDir,
          done: async () => finished(await followed.runProgress(run)),
        }),
      ]);
    }
    const { failures } = await waitForServer(store.location, () => followed.runFailures(run), opts);
    const total = await waitForServer(store.location, () => store.counts(), opts);
    await ensureHnswIndex(store, total.chunks, opts);
    return indexSummary(started, {
      workspace: store.location,
      files: files.length,
      indexed: counts.indexed,
      chunks: counts.chunks,
      unchanged,
      skipped: [...unwalkable, ...unreadable, ...duplicates, ...failures],
      total,
      podTime: {},
      moved: plan.moved,
      removed: plan.removed,
    });
  } finally {
    await queue?.close();
    await store.close();
  }
}

/**
 * Build the HNSW index once the store is big enough for queries to use it. A build blocks writes to
 * the chunks while it runs (CREATE INDEX), which is why it comes after the run and not before.
 */
export async function ensureHnswIndex(store: PostgresStore, chunks: number, opts: ServerWaitOptions & Pick<PostgresIndexOptions, 'hnswFromChunks' | 'hnsw' | 'onNotice'>): Promise<void> {
  if (chunks < (opts.hnswFromChunks ?? EXACT_BELOW_CHUNKS)) return;
  if (await waitForServer(store.location, () => store.hasHnswIndex(), opts)) return;
  opts.onNotice?.(`building the HNSW index over ${chunks} chunks (queries use it from ${EXACT_BELOW_CHUNKS} chunks; maintenance_work_mem bounds the build's memory)`);
  try {
    const { ms } = await store.buildHnswIndex(opts.hnsw);
    opts.onNotice?.(`built the HNSW index in ${(ms / 1000).toFixed(1)} s; later runs keep it up to date`);
  } catch (err) {
    // Two runs finishing together: the other one built it.
    if (!(await store.hasHnswIndex().catch(() => false))) throw err;
  }
}

/** Files of jobs that failed for good (counted in `failed`, not in `done`). */
function failedJobFiles(c: QueueCounts): number {
  return c.files - c.queued - c.active - c.done;
}

/**
 * Pull jobs and index them until `done()` says so on an empty queue (or the signal aborts).
 * A server that goes away is waited for (bounded); after that a StoreUnavailableError ends the
 * loop, and the job in progress is redone by another worker after its timeout.
 */
export async function workIndexJobs(opts: WorkerOptions): Promise<WorkerSummary> {
  const started = performance.now();
  const spec = await loadFlow(flowFile('index', opts.flow));
  const model = await loadModel(await resolveModelDir(opts.model));
  const store = await PostgresStore.openForWrite(opts.store, (opts.identity ?? indexIdentity)(spec, model));
  const worker = opts.name ?? `${os.hostname()}:${process.pid}`;
  const summary = { jobs: 0, indexed: 0, chunks: 0, skipped: 0, failedJobs: 0 };
  let queue: IndexQueue | undefined;
  const encoder = new JobEncoder(spec, model, { replicas: opts.replicas, batchSize: opts.batchSize });
  try {
    queue = await IndexQueue.open(opts.store);
    const q = queue;
    const wait = <T>(work: () => Promise<T>) => waitForServer(store.location, work, opts);
    // The encoder pool and model start before the first job is taken: a job's timeout runs from the
    // moment a worker takes it, and no job should wait in a worker that cannot work on it yet.
    await encoder.open();
    while (!opts.signal?.aborted) {
      const job = await wait(() => q.fetch());
      if (job) opts.onTake?.(job);
      if (!job) {
        if (await wait(async () => (await opts.done?.()) ?? false)) break;
        await sleep((opts.pollSeconds ?? 1) * 1000, undefined, { signal: opts.signal }).catch(() => undefined);
        continue;
      }
      let output: IndexJobOutput;
      try {
        const stored = await wait(() => q.storedContent(job.data.files.map((f) => f.sha256)));
        const { docs, skipped, alreadyStored } = await encoder.run(job.data.files, stored);
        await wait(() => store.addDocs(docs));
        output = {
          indexed: docs.length + alreadyStored.length,
          chunks: docs.reduce((n, d) => n + d.chunks.length, 0) + alreadyStored.reduce((n, sha) => n + stored.get(sha)!, 0),
          skipped,
          worker,
        };
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        const error = err instanceof Error ? err : new Error(String(err));
        summary.failedJobs++;
        opts.onJobError?.(job, error);
        await encoder.reset();
        await wait(() => q.fail(job, error));
        continue;
      }
      await wait(() => q.complete(job, output));
      summary.jobs++;
      summary.indexed += output.indexed;
      summary.chunks += output.chunks;
      summary.skipped += output.skipped.length;
      opts.onJob?.(job, output);
    }
  } finally {
    await encoder.close();
    await queue?.close();
    await store.close();
  }
  return { ...summary, seconds: (performance.now() - started) / 1000 };
}

/**
 * The index flow, kept open across jobs (the encoder pool starts once per worker). Its loader drops
 * a second file of content it has seen before, which is right within a job but not for a job seen
 * again (a retry here, or a later run re-trying a bad file): then the flow is opened afresh.
 */
class JobEncoder {
  private flow?: RunningFlow;
  private readonly seen = new Set<string>();
  /** What the loader asks about ("already indexed?"): the contents the store had when the job started. */
  private stored: ReadonlyMap<string, number> = new Map();
  private readonly labels = new Map<string, string>();

  constructor(
    private readonly spec: FlowSpec,
    private readonly model: LoadedModel,
    private readonly encoder: BuiltinServices['encoder'],
  ) {}

  async run(files: readonly IndexJobFile[], stored: ReadonlyMap<string, number>): Promise<{ docs: NewDoc[]; skipped: { file: string; reason: string }[]; alreadyStored: string[] }> {
    if (files.some((f) => this.seen.has(f.sha256))) await this.reset();
    for (const f of files) this.seen.add(f.sha256);
    this.stored = stored;
    this.labels.clear();
    for (const f of files) if (f.label !== undefined) this.labels.set(f.path, f.label);
    const flow = await this.open();
    const docs: NewDoc[] = [];
    const skipped: { file: string; reason: string }[] = [];
    const alreadyStored: string[] = [];
    await flow.runAll(
      files.map((f) => ({ uri: f.path })),
      ({ doc, skipped: skip }) => {
        if (skip?.expected) alreadyStored.push(doc.sha256!);
        else if (skip) skipped.push({ file: skip.file, reason: skip.reason });
        else docs.push(doc.entry as NewDoc);
      },
    );
    return { docs, skipped, alreadyStored };
  }

  /** Start the flow (the encoder pool, the model) if it is not running. */
  async open(): Promise<RunningFlow> {
    return (this.flow ??= await RunningFlow.open(this.spec, this.services()));
  }

  async reset(): Promise<void> {
    const flow = this.flow;
    this.flow = undefined;
    this.seen.clear();
    await flow?.close();
  }

  close(): Promise<void> {
    return this.reset();
  }

  private services(): BuiltinServices {
    // The loader only asks whether the store holds a content: what it held when the job started.
    const indexed = { hasDoc: (sha256: string) => this.stored.has(sha256) };
    return { mode: 'index', model: this.model, indexed, labels: this.labels, encoder: this.encoder };
  }
}

/** `status --store …`. */
export async function fleetStatus(url: string, opts: { failureLimit?: number } = {}): Promise<FleetStatus & { location: string }> {
  // Opening for reading refuses a database without a store (a typo in the URL) instead of creating one.
  const store = await PostgresStore.openForRead(url);
  await store.close();
  const queue = await IndexQueue.open(url);
  try {
    return { ...(await queue.fleetStatus(opts)), location: queue.location };
  } finally {
    await queue.close();
  }
}

/** Run `work`, waiting out a lost server: up to `attempts` tries with doubling waits, then a StoreUnavailableError. */
export async function waitForServer<T>(location: string, work: () => Promise<T>, opts: ServerWaitOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 10;
  let delay = opts.firstDelayMs ?? 1000;
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isConnectionLoss(err)) throw err;
      const reason = (err as Error).message.split('\n')[0];
      if (attempt >= attempts) {
        throw new StoreUnavailableError(
          location,
          `lost PostgreSQL at ${location} (${reason}) and it did not come back in ${(waited / 1000).toFixed(0)} s (${attempts} tries): giving up; a job in progress is redone by another worker after its timeout`,
          { cause: err },
        );
      }
      opts.onWait?.(`PostgreSQL at ${location} is unreachable (${reason}): retrying in ${(delay / 1000).toFixed(0)} s (try ${attempt} of ${attempts})`);
      await sleep(delay);
      waited += delay;
      delay = Math.min(delay * 2, 20_000);
    }
  }
}

/** sha256 of every file (a few at a time); what cannot be read is set apart with the reason. */
async function hashFiles(files: readonly string[]): Promise<{ listing: ListedFile[]; unreadable: { file: string; reason: string }[] }> {
  const hashes = new Array<string | undefined>(files.length);
  const unreadable: { file: string; reason: string }[] = [];
  let next = 0;
  const reader = async () => {
    while (next < files.length) {
      const i = next++;
      try {
        hashes[i] = await hashFile(files[i]);
      } catch (err) {
        const reason = isHttpUrl(files[i]) ? `cannot download (${(err as Error).message})` : `cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
        unreadable.push({ file: files[i], reason });
      }
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, reader));
  const listing: ListedFile[] = [];
  files.forEach((file, i) => hashes[i] && listing.push({ path: file, sha256: hashes[i] }));
  return { listing, unreadable: unreadable.sort((a, b) => (a.file < b.file ? -1 : 1)) };
}

/** The loader's default size limit, for the URLs downloaded to be hashed. */
const MAX_URL_BYTES = 256 * 1024 * 1024;

async function hashFile(file: string): Promise<string> {
  if (isHttpUrl(file))
    return createHash('sha256')
      .update(await fetchBytes(file, { maxBytes: MAX_URL_BYTES }))
      .digest('hex');
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}
