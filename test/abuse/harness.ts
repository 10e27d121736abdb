/**
 * What the abuse tests share: the real server on a small real index in this process (so its RSS is
 * this process's), raw sockets that misbehave on purpose, and a well-behaved search sent from another
 * loopback address (127.0.0.2: Linux routes all of 127/8 to lo), so per-address limits aimed at the
 * abuser do not stop it.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { serve, type RunningServer, type ServeOptions } from '../../src/server/serve.js';
import { flowerImage } from '../../bench/fixtures.js';
import { buildSmallIndex, type SmallIndex } from '../../bench/small-index.js';

/** The address the abusive sockets come from. */
export const ABUSER = '127.0.0.1';
/** The address well-behaved searches come from. */
export const BYSTANDER = '127.0.0.2';
/** RSS growth allowed during one abuse (the index, model and encoder are loaded before it starts). */
export const RSS_BUDGET_BYTES = 64 * 1024 * 1024;

export interface AbuseTarget {
  readonly server: RunningServer;
  readonly index: SmallIndex;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTarget(prefix: string, limits: Omit<ServeOptions, 'workspace'>): Promise<AbuseTarget> {
  const index = await buildSmallIndex(prefix);
  const server = await serve({ ...limits, workspace: index.workspace, port: 0, log: false });
  const port = Number(new URL(server.url).port);
  // One search before any RSS baseline: the first ones grow the encoder's arenas.
  for (let i = 0; i < 3; i++) await normalSearch(port);
  const close = async (): Promise<void> => {
    await server.close();
    index.cleanup();
  };
  return { server, index, port, close };
}

const queryImage = fs.readFileSync(flowerImage(805));

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path: string;
  /** The Host header (default 127.0.0.1:port). */
  readonly host?: string;
  readonly headers?: http.OutgoingHttpHeaders;
  readonly body?: Uint8Array | string;
  /** Source address (default the bystander's). */
  readonly localAddress?: string;
  /** Give up (reject) after this long (default 10 s), so a server that hangs fails the test instead of stalling it. */
  readonly timeoutMs?: number;
}

/** One HTTP request through node's client, on a connection of its own, with any Host header (fetch would not send a foreign one). */
export function request(port: number, opts: RequestOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { host: opts.host ?? `127.0.0.1:${port}`, ...opts.headers };
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers,
        localAddress: opts.localAddress ?? BYSTANDER,
        agent: false,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('latin1') }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A well-behaved search: a daisy that is not in the index, from the bystander address. */
export function normalSearch(port: number): Promise<RawResponse> {
  return request(port, { method: 'POST', path: '/search?top=3', headers: { 'content-type': 'image/jpeg' }, body: queryImage });
}

/** The bystander's search must succeed, and find daisies. */
export function isGoodSearch(response: RawResponse): boolean {
  return response.status === 200 && (JSON.parse(response.body) as { results: { label: string }[] }).results[0]?.label === 'daisy';
}

export interface WatchedSocket {
  readonly socket: net.Socket;
  /** Everything the server sent, and ms from connect to close, once the server (or the test) has closed it. */
  readonly closed: Promise<{ text: string; afterMs: number }>;
}

/** A TCP connection from the abuser's address that the test drives byte by byte. */
export async function connect(port: number, localAddress = ABUSER): Promise<WatchedSocket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {}); // a reset from the server is an expected way for these to end
  await new Promise((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<{ text: string; afterMs: number }>((resolve) => socket.once('close', () => resolve({ text, afterMs: performance.now() - started })));
  return { socket, closed };
}

/** What the server sent before closing `watched` within `timeoutMs`, or null (and the socket destroyed) if it kept it open. */
export async function closedWithin(watched: WatchedSocket, timeoutMs: number): Promise<{ text: string; afterMs: number } | null> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  const outcome = await Promise.race([watched.closed, gaveUp]);
  clearTimeout(timer);
  if (!outcome) watched.socket.destroy();
  return outcome;
}

/** Write `bytes` one at a time, `everyMs` apart, until they are out or the socket closes. */
export function dribble(socket: net.Socket, bytes: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable || at >= bytes.length) return clearInterval(timer);
    socket.write(bytes[at++]);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** Peak RSS growth of this process from now until `stop()`, sampled every 20 ms. */
export function watchRss(): { stop(): number } {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss()) - baseline;
    },
  };
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Poll the server's /healthz (from the bystander) until `condition` holds of it, for at most `timeoutMs`. */
export async function until(port: number, condition: (health: { queue: Record<string, number> }) => boolean, timeoutMs = 3000): Promise<boolean> {
  for (const started = performance.now(); performance.now() - started < timeoutMs; await new Promise((resolve) => setTimeout(resolve, 25))) {
    const health = await request(port, { path: '/healthz' });
    if (health.status === 200 && condition(JSON.parse(health.body) as { queue: Record<string, number> })) return true;
  }
  return false;
}
