/**
 * `flower-native serve`: the HTTP gateway from the command line, shut down gracefully on
 * SIGINT/SIGTERM: stop accepting, finish the requests in flight, close the searcher, exit 0.
 */
import { Option, type Command } from 'commander';
import { EXACT_BELOW_CHUNKS } from '../search/index.js';
import { DEFAULT_LIMITS } from '../server/limits.js';
import { DEFAULT_GRACE_MS, DEFAULT_HOST, DEFAULT_PORT, serve } from '../server/serve.js';
import { integer, megabytes } from './args.js';

interface ServeCliOptions {
  workspace?: string;
  store?: string;
  exact?: boolean;
  port: number;
  host: string;
  model?: string;
  flow?: string;
  replicas?: number;
  maxUploadMb: number;
  maxPixels: number;
  maxConcurrent: number;
  maxQueue: number;
  searchTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnectionsPerClient: number;
  allowedHosts?: string[];
  grace: number;
  log: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the search API (POST /search, /docs/:id, /healthz, /metrics) and a search page at /')
    .option('-w, --workspace <dir>', 'indexed workspace')
    .option('--store <dir|url>', 'the index: a workspace folder or a postgres:// URL (instead of --workspace); sees docs added while it runs')
    .option('--exact', `Postgres store: exact chunk search whatever its size (default: exact below ${EXACT_BELOW_CHUNKS} chunks, HNSW above)`)
    .option('-p, --port <n>', 'TCP port (0: any free port)', integer(0, 65535), DEFAULT_PORT)
    .option('--host <addr>', 'address to bind; 0.0.0.0 exposes the server to the network', DEFAULT_HOST)
    .option('--model <dir>', 'model directory (default: the one the workspace was built with)')
    .option('--flow <file>', 'query flow YAML (default: the packaged one)')
    .option('--replicas <n>', "encoder workers, overriding the flow's replicas", integer(1, 64))
    .addOption(new Option('--max-upload-mb <n>', 'largest upload in MiB (413 beyond)').argParser(megabytes).default(DEFAULT_LIMITS.maxUploadBytes, String(DEFAULT_LIMITS.maxUploadBytes / 1024 / 1024)))
    .option('--max-pixels <n>', 'largest image in pixels, from its header (422 beyond)', integer(1), DEFAULT_LIMITS.maxPixels)
    .option('--max-concurrent <n>', 'searches running at once', integer(1, 256), DEFAULT_LIMITS.maxConcurrent)
    .option('--max-queue <n>', 'searches waiting beyond those running (429 + Retry-After beyond)', integer(0, 10_000), DEFAULT_LIMITS.maxWaiting)
    .option('--search-timeout-ms <n>', 'queue wait + search time before 503 + Retry-After', integer(1), DEFAULT_LIMITS.searchTimeoutMs)
    .option('--headers-timeout-ms <n>', "time to receive a request's headers (408 and close beyond)", integer(1), DEFAULT_LIMITS.headersTimeoutMs)
    .option('--request-timeout-ms <n>', 'time to receive a whole request, headers and body (408 and close beyond)', integer(1), DEFAULT_LIMITS.requestTimeoutMs)
    .option('--idle-timeout-ms <n>', 'a keep-alive connection idle this long is closed', integer(1), DEFAULT_LIMITS.idleTimeoutMs)
    .option('--max-connections-per-client <n>', 'open connections from one address (429 and close beyond; 0: no limit)', integer(0, 100_000), DEFAULT_LIMITS.maxConnectionsPerClient)
    .option('--allowed-hosts <names>', 'comma-separated Host names to answer besides the bound address (and localhost on loopback); * for any (421 for others)', hostList)
    .option('--grace <ms>', 'on SIGINT/SIGTERM, how long in-flight requests may take before exit 1', integer(0), DEFAULT_GRACE_MS)
    .option('--no-log', 'no JSON request log on stdout')
    .action(async (options: ServeCliOptions, command: Command) => {
      const running = await serve({
        workspace: options.store ?? options.workspace ?? command.error("error: required option '-w, --workspace <dir>' or '--store <dir|url>' not specified"),
        exact: options.exact,
        port: options.port,
        host: options.host,
        model: options.model,
        flow: options.flow,
        replicas: options.replicas,
        maxUploadBytes: options.maxUploadMb,
        maxPixels: options.maxPixels,
        maxConcurrent: options.maxConcurrent,
        maxWaiting: options.maxQueue,
        searchTimeoutMs: options.searchTimeoutMs,
        headersTimeoutMs: options.headersTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        maxConnectionsPerClient: options.maxConnectionsPerClient,
        allowedHosts: options.allowedHosts,
        log: options.log,
      });
      const { docCount, chunkCount } = running.searcher.workspace;
      process.stderr.write(`flower-native serve: listening on ${running.url} (${docCount} docs, ${chunkCount} chunks); Ctrl-C to stop\n`);
      const stop = (signal: NodeJS.Signals): void => {
        process.stderr.write(`flower-native serve: ${signal}, finishing in-flight requests\n`);
        const force = setTimeout(() => {
          process.stderr.write(`flower-native serve: requests still running after ${options.grace} ms, exiting\n`);
          process.exit(1);
        }, options.grace);
        force.unref();
        running.close().then(
          () => {
            process.stderr.write('flower-native serve: stopped\n');
            process.exit(0);
          },
          (err: unknown) => {
            process.stderr.write(`flower-native serve: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

function hostList(value: string): string[] {
  return value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
}
