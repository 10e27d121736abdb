/**
 * Behaviour that needs a searcher slower than the real one on a tiny index: the search deadline
 * (503 + Retry-After) and a client giving up while queued (its search never runs). A scripted
 * fake searcher stands in; the API itself is tested against a real index in server-api.test.ts.
 */
import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../src/server/app.js';
import type { SearchBackend, SearchOutcome } from '../src/server/types.js';
import { flowerImage } from '../bench/fixtures.js';

const image = fs.readFileSync(flowerImage(801));

/** A searcher whose every search takes `delayMs` (and waits for `held`, if given), counting the searches it started and keeping their signals. */
function slowSearcher(delayMs: number, held?: Promise<void>): SearchBackend & { started: number; signals: (AbortSignal | undefined)[] } {
  const doc = { id: 0, path: flowerImage(801), sha256: 'a'.repeat(64), bytes: image.byteLength, width: 500, height: 500, label: 'daisy', chunkCount: 1 };
  return {
    started: 0,
    signals: [],
    workspace: { docCount: 1, chunkCount: 1, doc: (id: number) => (id === 0 ? doc : undefined) },
    async search(_image, opts): Promise<SearchOutcome> {
      this.started++;
      this.signals.push(opts.signal);
      await Promise.all([new Promise((resolve) => setTimeout(resolve, delayMs)), held]);
      return {
        results: [{ rank: 1, docId: 0, score: 1, path: doc.path, label: 'daisy', box: { x: 0, y: 0, width: 500, height: 500 } }],
        timings: { decode: 0, encode: delayMs, topk: 0, rank: 0, lookup: 0 },
      };
    },
  };
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

function post(base: string): Promise<Response> {
  return fetch(`${base}/search`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(image) });
}

test('a search past the deadline is answered 503 with Retry-After; the server stays usable', async (t) => {
  const searcher = slowSearcher(400);
  const app = await createServer({ searcher, searchTimeoutMs: 100, maxConcurrent: 1 });
  const base = await listen(app);
  try {
    const response = await post(base);
    t.is(response.status, 503);
    t.regex(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    t.is(((await response.json()) as { error: { code: string } }).error.code, 'search_timeout');
    // The search itself is told to stop (between its stages), not only its answer dropped.
    t.is(searcher.signals.length, 1);
    t.true(searcher.signals[0]?.aborted, 'the timed-out search was aborted');
    t.is((searcher.signals[0]?.reason as { code?: string } | undefined)?.code, 'search_timeout');
    // The timed-out search still holds the slot until it ends; afterwards searches succeed again.
    await new Promise((resolve) => setTimeout(resolve, 400));
    t.like(await (await fetch(`${base}/healthz`)).json(), { queue: { inFlight: 0, waiting: 0 } });
  } finally {
    await app.close();
  }
});

test('a client that disconnects while queued leaves the queue and its search never runs', async (t) => {
  // The first search holds its slot until the server has seen the second client go, however slow this machine is.
  let release!: () => void;
  const searcher = slowSearcher(300, new Promise<void>((resolve) => (release = resolve)));
  const app = await createServer({ searcher, maxConcurrent: 1, maxWaiting: 4 });
  const base = await listen(app);
  try {
    const first = post(base);
    // Waits on the server's state, not on the clock: on a loaded machine the two clients could otherwise arrive swapped.
    await until(base, (queue) => queue.inFlight === 1);
    // The second client sends its whole search, then drops the connection while it is queued.
    const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /search HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\nContent-Length: ${image.byteLength}\r\n\r\n`);
    socket.write(image);
    await until(base, (queue) => queue.waiting === 1);
    t.like(await (await fetch(`${base}/healthz`)).json(), { queue: { inFlight: 1, waiting: 1 } });
    socket.destroy();
    await until(base, (queue) => queue.waiting === 0);
    release();
    t.is((await first).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 400));
    t.is(searcher.started, 1, 'the abandoned search was dropped from the queue');
    t.like(await (await fetch(`${base}/healthz`)).json(), { queue: { inFlight: 0, waiting: 0 } });
  } finally {
    release();
    await app.close();
  }
});

/** Poll /healthz until `condition` holds of its queue (at most 5 s; the assertions after it then tell what is wrong). */
async function until(base: string, condition: (queue: { inFlight: number; waiting: number }) => boolean): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 5000; await new Promise((resolve) => setTimeout(resolve, 20))) {
    const health = (await (await fetch(`${base}/healthz`)).json()) as { queue: { inFlight: number; waiting: number } };
    if (condition(health.queue)) return;
  }
}

test('responses carry nosniff; unknown routes are JSON 404s', async (t) => {
  const app = await createServer({ searcher: slowSearcher(0) });
  const base = await listen(app);
  try {
    const response = await fetch(`${base}/nope`);
    t.is(response.status, 404);
    t.is(response.headers.get('x-content-type-options'), 'nosniff');
    t.like(await response.json(), { error: { code: 'not_found' } });
  } finally {
    await app.close();
  }
});

/** A raw keep-alive connection to `base`; resolves with ms from connect to the server closing it. */
async function keepAliveSocket(base: string): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(performance.now() - started))) };
}

test('an idle keep-alive connection is closed after idleTimeoutMs', async (t) => {
  const app = await createServer({ searcher: slowSearcher(0), idleTimeoutMs: 300 });
  const base = await listen(app);
  try {
    const { socket, closed } = await keepAliveSocket(base);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), 3000));
    const afterMs = await Promise.race([closed, timeout]);
    socket.destroy();
    t.regex(text, /^HTTP\/1\.1 200 /);
    t.true(afterMs < 2000, `closed after ${afterMs} ms`);
  } finally {
    await app.close();
  }
});

test('allowedHosts replaces the loopback names; "*" allows any Host', async (t) => {
  const get = (base: string, host: string) =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: new URL(base).port, path: '/healthz', headers: { host }, agent: false }, (response) => resolve(response.resume().statusCode ?? 0)).on('error', reject);
    });
  const named = await createServer({ searcher: slowSearcher(0), allowedHosts: ['flowers.lan', '192.168.1.20'] });
  const any = await createServer({ searcher: slowSearcher(0), allowedHosts: ['*'] });
  const defaults = await createServer({ searcher: slowSearcher(0) });
  try {
    const [namedBase, anyBase, defaultBase] = [await listen(named), await listen(any), await listen(defaults)];
    t.is(await get(namedBase, 'flowers.lan:80'), 200);
    t.is(await get(namedBase, 'FLOWERS.LAN'), 200);
    t.is(await get(namedBase, '192.168.1.20:45678'), 200);
    t.is(await get(namedBase, 'localhost'), 421);
    t.is(await get(anyBase, 'anything.example'), 200);
    t.is(await get(defaultBase, '127.0.0.1'), 200);
    t.is(await get(defaultBase, 'flowers.lan'), 421);
  } finally {
    await Promise.all([named.close(), any.close(), defaults.close()]);
  }
});
