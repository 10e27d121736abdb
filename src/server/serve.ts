/**
 * `serve()`: open an index once (query flow, encoder pool and chunk matrix stay up), warm it with one
 * search and listen; `close()` stops accepting, finishes the requests in flight, closes the searcher.
 */
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { openIndex, type OpenIndexOptions, type Searcher } from '../flows/search.js';
import { allowedHostsFor } from './hosts.js';
import type { ServerLimits } from './limits.js';

export const DEFAULT_PORT = 45678;
export const DEFAULT_HOST = '127.0.0.1';
/** In-flight requests get this long after a signal before the process gives up on them (exit 1). */
export const DEFAULT_GRACE_MS = 30_000;

export interface ServeOptions extends Partial<ServerLimits>, Pick<OpenIndexOptions, 'model' | 'flow' | 'replicas' | 'exact'> {
  /** A workspace folder or a postgres:// URL. */
  workspace: string;
  port?: number;
  host?: string;
  /** Host names to answer besides the bound ones (the --host value; localhost, 127.0.0.1 and [::1] on loopback; the machine's names and addresses on 0.0.0.0). '*': any. */
  allowedHosts?: readonly string[];
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
  const searcher = await openIndex(opts.workspace, { model: opts.model, flow: opts.flow, replicas: opts.replicas, exact: opts.exact });
  try {
    // The first search loads the model and starts the encoder pool; do it now, so a broken
    // model or an incompatible index fails at startup and the first client is not slow.
    await searcher.search(await warmUpImage(), { top: 1, name: 'warm-up' });
    const { createServer } = await import('./app.js'); // fastify loads only for `serve`
    const host = opts.host ?? DEFAULT_HOST;
    const app = await createServer({ ...opts, searcher, allowedHosts: allowedHostsFor(host, opts.allowedHosts), logger: opts.log === false ? false : { level: 'info' } });
    await app.listen({ port: opts.port ?? DEFAULT_PORT, host });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : opts.port;
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
  return sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 120, g: 160, b: 90 } } })
    .png()
    .toBuffer();
}
