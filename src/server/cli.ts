/**
 * `flower-native serve`: open an index once (query flow, encoder pool and chunk matrix stay up),
 * serve the search API and page, and shut down gracefully on SIGINT/SIGTERM: stop accepting,
 * finish the requests in flight, close the searcher, exit 0.
 */
import { Option, type Command } from 'commander';
import { integer, megabytes } from '../cli/args.js';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { openIndex, type OpenIndexOptions, type Searcher } from '../index.js';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.js';

export const DEFAULT_PORT = 45678;
export const DEFAULT_HOST = '127.0.0.1';
/** In-flight requests get this long after a signal before the process gives up on them (exit 1). */
export const DEFAULT_GRACE_MS = 30_000;

export interface ServeOptions extends Partial<ServerLimits>, Pick<OpenIndexOptions, 'model' | 'flow' | 'replicas'> {
  workspace: string;
  port?: number;
  host?: string;
  /** Fastify's JSON request log on stdout (default: on). */
  log?: boolean;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly searcher: Searcher;
  /** http://host:port/ the server listens on. */
  readonly url: string;
  /** Stop accepting, let in-flight requests finish, then close the searcher. */
  close(): Promise<void>;
}

/** Open the index, warm the query flow with one search, and listen. */
export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const searcher = await openIndex(opts.workspace, { model: opts.model, flow: opts.flow, replicas: opts.replicas });
  try {
    // The first search loads the model and starts the encoder pool; do it now, so a broken
    // model or an incompatible index fails at startup and the first client is not slow.
    await searcher.search(await warmUpImage(), { top: 1, name: 'warm-up' });
    const { createServer } = await import('./app.js'); // fastify loads only for `serve`
    const app = await createServer({ ...opts, searcher, logger: opts.log === false ? false : { level: 'info' } });
    await app.listen({ port: opts.port ?? DEFAULT_PORT, host: opts.host ?? DEFAULT_HOST });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : opts.port;
    const host = opts.host ?? DEFAULT_HOST;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => (closing ??= app.close().finally(() => searcher.close()));
    return { app, searcher, url, close };
  } catch (err) {
    await searcher.close();
    throw err;
  }
}

async function warmUpImage(): Promise<Uint8Array> {
  return sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 120, g: 160, b: 90 } } }).png().toBuffer();
}

interface ServeCliOptions {
  workspace: string;
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
  requestTimeoutMs: number;
  grace: number;
  log: boolean;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the search API (POST /search, /docs/:id, /healthz, /metrics) and a search page at /')
    .requiredOption('-w, --workspace <dir>', 'indexed workspace')
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
    .option('--request-timeout-ms <n>', 'time to receive a whole request (408 beyond)', integer(1), DEFAULT_LIMITS.requestTimeoutMs)
    .option('--grace <ms>', 'on SIGINT/SIGTERM, how long in-flight requests may take before exit 1', integer(0), DEFAULT_GRACE_MS)
    .option('--no-log', 'no JSON request log on stdout')
    .action(async (options: ServeCliOptions) => {
      const running = await serve({
        workspace: options.workspace,
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
        requestTimeoutMs: options.requestTimeoutMs,
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
