/**
 * Server load: searches/s and latency percentiles of POST /search at a few concurrency levels,
 * measured with autocannon over loopback against `flower-native serve` in its own process (so the
 * load generator does not share the server's event loop), each level bounded in requests and time.
 * Also /healthz at high concurrency: the HTTP layer's own ceiling, next to which search is
 * encoder-bound. Standalone: `node dist/bench/server.js [--quick] [--workspace DIR]`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_LIMITS } from '../src/server/limits.js';
import { flowerImage, projectRoot } from './fixtures.js';
import { buildSmallIndex } from './small-index.js';
import type { SectionOptions, SectionResult } from './section.js';
import { formatSummary, markdownTable, percentile, summarize, type Summary } from './stats.js';

export interface ServerBenchOptions extends Partial<SectionOptions> {
  readonly quick: boolean;
  /** Index to serve; default: a fresh one of fixture images (17 quick, 68 full; all classes). */
  readonly workspace?: string;
}

export interface ServerLoadLevel {
  readonly connections: number;
  /** 200 answers per second of run time. */
  readonly searchesPerSecond: Summary;
  /** Latency percentiles of 200 answers, ms. */
  readonly p50Ms: Summary;
  readonly p99Ms: Summary;
  /** Summed over runs. */
  readonly answered: number;
  readonly refused429: number;
  readonly otherErrors: number;
}

export interface ServerBenchReport extends SectionResult {
  readonly data: {
    readonly docs: number;
    readonly chunks: number;
    readonly maxConcurrent: number;
    readonly maxWaiting: number;
    readonly runsPerLevel: number;
    readonly secondsPerRunMax: number;
    readonly search: ServerLoadLevel[];
    readonly healthz: { readonly connections: number; readonly requestsPerSecond: Summary; readonly p50Ms: Summary; readonly p99Ms: Summary };
  };
}

/** Query images not in either bench index (those take images 1-4 of each class). */
const QUERY_IMAGES = [85, 405, 805, 1205];

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
}
interface AutocannonInstance {
  on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null, result: AutocannonResult) => void) => AutocannonInstance;
// autocannon is CommonJS without type declarations: load it through require, typed by the bits used.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface LoadRun {
  seconds: number;
  latencies: number[];
  statuses: Map<number, number>;
  errors: number;
}

function load(opts: { url: string; connections: number; seconds: number; maxRequests: number; method?: string; bodies?: Buffer[] }): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    const instance = autocannon(
      {
        url: opts.url,
        connections: opts.connections,
        duration: opts.seconds,
        maxOverallRequests: Math.max(opts.connections, opts.maxRequests),
        method: opts.method ?? 'GET',
        headers: opts.bodies ? { 'content-type': 'image/jpeg' } : {},
        requests: opts.bodies?.map((body) => ({ body })),
      },
      (err, result) => {
        if (err) reject(err);
        else resolve({ seconds: result.duration, latencies, statuses, errors: result.errors + result.timeouts });
      },
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 200) latencies.push(ms);
    });
  });
}

/** `flower-native serve` in a child process; resolves with its URL once it listens. */
async function startServer(workspace: string): Promise<{ url: string; child: ChildProcess }> {
  const cli = path.join(projectRoot, 'dist/src/cli/main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--workspace', workspace, '--port', '0', '--no-log'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`flower-native serve exited with ${code} before listening:\n${stderr}`)));
  });
  return { url, child };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export async function benchServer(opts: ServerBenchOptions): Promise<ServerBenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runs = opts.runs ?? (opts.quick ? 2 : 3);
  const levels = opts.quick ? [1, 4] : [1, 2, 4, 8, 32];
  const secondsPerRun = opts.quick ? 6 : 15;
  /** Enough searches per run for a p99 to mean something, few enough to stay bounded. */
  const requestsPerRun = (connections: number) => (opts.quick ? 12 : 40) + 2 * connections;

  let built: Awaited<ReturnType<typeof buildSmallIndex>> | undefined;
  let workspace = opts.workspace;
  if (!workspace) {
    const perClass = opts.quick ? 1 : 4;
    log(`server bench: indexing ${17 * perClass} fixture images`);
    built = await buildSmallIndex('flower-bench-server', Array.from({ length: 17 }, (_, cls) => Array.from({ length: perClass }, (_, i) => cls * 80 + 1 + i)).flat());
    workspace = built.workspace;
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(workspace, 'manifest.json'), 'utf8')) as { counts: { docs: number; chunks: number } };
  const { url, child } = await startServer(workspace);
  try {
    const bodies = QUERY_IMAGES.map((n) => fs.readFileSync(flowerImage(n)));
    const searchUrl = new URL('/search?top=10', url).href;
    log('server bench: warm-up');
    await load({ url: searchUrl, method: 'POST', bodies, connections: 1, seconds: secondsPerRun, maxRequests: 4 });

    const search: ServerLoadLevel[] = [];
    for (const connections of levels) {
      const results: LoadRun[] = [];
      for (let run = 0; run < runs; run++) {
        log(`server bench: POST /search, ${connections} connection(s), run ${run + 1}/${runs}`);
        results.push(await load({ url: searchUrl, method: 'POST', bodies, connections, seconds: secondsPerRun, maxRequests: requestsPerRun(connections) }));
      }
      search.push(levelOf(connections, results));
    }

    const healthConnections = 16;
    const health: LoadRun[] = [];
    for (let run = 0; run < runs; run++) {
      log(`server bench: GET /healthz, ${healthConnections} connections, run ${run + 1}/${runs}`);
      health.push(await load({ url: new URL('/healthz', url).href, connections: healthConnections, seconds: opts.quick ? 2 : 4, maxRequests: 1_000_000 }));
    }
    const healthLevel = levelOf(healthConnections, health);
    const data: ServerBenchReport['data'] = {
      docs: manifest.counts.docs,
      chunks: manifest.counts.chunks,
      maxConcurrent: DEFAULT_LIMITS.maxConcurrent,
      maxWaiting: DEFAULT_LIMITS.maxWaiting,
      runsPerLevel: runs,
      secondsPerRunMax: secondsPerRun,
      search,
      healthz: { connections: healthConnections, requestsPerSecond: healthLevel.searchesPerSecond, p50Ms: healthLevel.p50Ms, p99Ms: healthLevel.p99Ms },
    };
    return { data, markdown: markdownOf(data) };
  } finally {
    await stopServer(child);
    built?.cleanup();
  }
}

function levelOf(connections: number, runs: LoadRun[]): ServerLoadLevel {
  const count = (run: LoadRun, status: number) => run.statuses.get(status) ?? 0;
  const answered = runs.map((run) => count(run, 200));
  const usable = runs.filter((run) => run.latencies.length > 0);
  const p = (q: number) => summarize(usable.length ? usable.map((run) => percentile(run.latencies, q)) : [NaN]);
  return {
    connections,
    searchesPerSecond: summarize(runs.map((run, i) => answered[i] / run.seconds)),
    p50Ms: p(50),
    p99Ms: p(99),
    answered: answered.reduce((a, b) => a + b, 0),
    refused429: runs.reduce((sum, run) => sum + count(run, 429), 0),
    otherErrors: runs.reduce((sum, run) => sum + run.errors + [...run.statuses].filter(([status]) => status !== 200 && status !== 429).reduce((a, [, n]) => a + n, 0), 0),
  };
}

function markdownOf(data: ServerBenchReport['data']): string {
  const rows = data.search.map((level) => [
    String(level.connections),
    formatSummary(level.searchesPerSecond, 2),
    formatSummary(level.p50Ms, 0),
    formatSummary(level.p99Ms, 0),
    `${level.answered} / ${level.refused429}${level.otherErrors ? ` / ${level.otherErrors} other` : ''}`,
  ]);
  const single = data.search[0];
  const busiest = data.search.reduce((a, b) => (b.searchesPerSecond.median > a.searchesPerSecond.median ? b : a));
  return [
    `POST /search?top=10 with fixture JPEGs over loopback (autocannon) against \`flower-native serve\` in its own process: ${data.docs} docs, ${data.chunks} chunks; server limits ${data.maxConcurrent} running + ${data.maxWaiting} waiting; ${data.runsPerLevel} runs per level, each ≤ ${data.secondsPerRunMax} s. Latencies are of 200 answers.`,
    markdownTable(['connections', 'searches/s', 'p50 ms', 'p99 ms', '200 / 429'], rows),
    `Searches are encoder-bound: ${formatSummary(single.searchesPerSecond, 2)}/s with one client, ${formatSummary(busiest.searchesPerSecond, 2)}/s at best (${busiest.connections} connections, ${(busiest.searchesPerSecond.median / single.searchesPerSecond.median).toFixed(2)}×) on ${os.availableParallelism()} cores; beyond the queue bound the extra load is refused with 429 instead of queueing without limit. For scale, GET /healthz at ${data.healthz.connections} connections: ${formatSummary(data.healthz.requestsPerSecond, 0)} requests/s, p99 ${formatSummary(data.healthz.p99Ms, 1)} ms.`,
  ].join('\n\n');
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--workspace');
  const report = await benchServer({ quick: args.includes('--quick'), workspace: at >= 0 ? args[at + 1] : undefined });
  process.stdout.write(`${report.markdown}\n`);
}
