/** The server's building blocks on their own: the admission queue, the metrics text, the thumbnail cache, the allowed Host names. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import { register } from 'prom-client';
import sharp from 'sharp';
import { allowedHostsFor, isAllowedHost } from '../src/server/hosts.js';
import { ServerMetrics } from '../src/server/metrics.js';
import { SearchQueue } from '../src/server/queue.js';
import { ThumbnailCache } from '../src/server/thumbs.js';
import { flowerImage } from '../bench/fixtures.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('queue admits maxConcurrent + maxWaiting, refuses beyond, and admits again once a ticket is released', (t) => {
  const queue = new SearchQueue({ maxConcurrent: 2, maxWaiting: 1 });
  const tickets = [queue.tryAdmit(), queue.tryAdmit(), queue.tryAdmit()];
  t.true(tickets.every((ticket) => ticket !== null));
  t.is(queue.tryAdmit(), null);
  t.is(queue.waiting, 3);
  tickets[0]!.release();
  tickets[0]!.release(); // idempotent: must not free a second place
  t.not(queue.tryAdmit(), null);
  t.is(queue.tryAdmit(), null);
});

test('queue runs at most maxConcurrent searches at once, first come first served', async (t) => {
  const queue = new SearchQueue({ maxConcurrent: 1, maxWaiting: 2 });
  const gates = [deferred(), deferred(), deferred()];
  const order: number[] = [];
  const runs = gates.map((gate, i) =>
    queue.tryAdmit()!.run(async () => {
      order.push(i);
      await gate.promise;
      return i;
    }),
  );
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, [0]);
  t.is(queue.inFlight, 1);
  t.is(queue.waiting, 2);
  gates[0].resolve();
  t.is(await runs[0], 0);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, [0, 1]);
  gates[1].resolve();
  gates[2].resolve();
  t.deepEqual(await Promise.all(runs), [0, 1, 2]);
  t.is(queue.inFlight, 0);
});

test('a waiting search whose client went away leaves the queue without running', async (t) => {
  const queue = new SearchQueue({ maxConcurrent: 1, maxWaiting: 1 });
  const gate = deferred();
  const first = queue.tryAdmit()!;
  const running = first.run(() => gate.promise);
  const second = queue.tryAdmit()!;
  const abort = new AbortController();
  let ran = false;
  const waiting = second.run(() => {
    ran = true;
    return Promise.resolve();
  }, abort.signal);
  abort.abort(new Error('client closed'));
  await t.throwsAsync(waiting, { message: 'client closed' });
  second.release();
  gate.resolve();
  await running;
  first.release();
  t.false(ran);
  t.is(queue.waiting, 0);
  t.is(queue.inFlight, 0);
});

test('a released ticket keeps its slot until its running search finishes', async (t) => {
  const queue = new SearchQueue({ maxConcurrent: 1, maxWaiting: 0 });
  const gate = deferred();
  const ticket = queue.tryAdmit()!;
  const running = ticket.run(() => gate.promise);
  ticket.release(); // the client disconnected mid-search
  t.is(queue.tryAdmit(), null, 'the encoder is still busy with the abandoned search');
  gate.resolve();
  await running;
  t.not(queue.tryAdmit(), null);
});

test('uploads in progress take no queue place; a full queue says so before any upload', (t) => {
  const queue = new SearchQueue({ maxConcurrent: 1, maxWaiting: 0 });
  const uploads = [queue.beginUpload(), queue.beginUpload(), queue.beginUpload()];
  t.is(queue.uploading, 3);
  t.false(queue.full, 'uploads hold no place');
  const ticket = queue.tryAdmit();
  t.not(ticket, null);
  t.true(queue.full);
  uploads[0]();
  uploads[0](); // idempotent
  t.is(queue.uploading, 2);
  ticket!.release();
  t.false(queue.full);
});

test('allowed Host names: the bound address, loopback names on loopback, the machine names on 0.0.0.0, extras', (t) => {
  t.deepEqual(allowedHostsFor('127.0.0.1'), ['127.0.0.1', 'localhost', '[::1]']);
  t.deepEqual(allowedHostsFor('::1', ['Flowers.LAN']), ['[::1]', 'localhost', '127.0.0.1', 'flowers.lan']);
  t.deepEqual(allowedHostsFor('192.168.1.20'), ['192.168.1.20'], 'a LAN address is not reached as localhost');
  const wildcard = allowedHostsFor('0.0.0.0');
  for (const name of ['localhost', '127.0.0.1', '[::1]', os.hostname().toLowerCase()]) t.true(wildcard.includes(name), name);
  const allowed = new Set(allowedHostsFor('127.0.0.1'));
  t.true(isAllowedHost('localhost:45678', allowed));
  t.true(isAllowedHost('[::1]:45678', allowed));
  t.true(isAllowedHost('LOCALHOST', allowed));
  for (const host of ['evil.example', 'localhost.evil.example:45678', '127.0.0.1.nip.io', 'localhost.', '', undefined]) t.false(isAllowedHost(host, allowed), String(host));
  t.true(isAllowedHost('anything.example', new Set(['*'])));
});

test('Retry-After is at least one second and grows with the backlog', async (t) => {
  const queue = new SearchQueue({ maxConcurrent: 1, maxWaiting: 10 });
  t.is(queue.retryAfterSeconds(), 1);
  const done = queue.tryAdmit()!;
  await done.run(() => new Promise((r) => setTimeout(r, 300)));
  done.release();
  for (let i = 0; i < 10; i++) queue.tryAdmit();
  t.true(queue.retryAfterSeconds() >= 3, `10 queued × ~300 ms → ≥ 3 s, got ${queue.retryAfterSeconds()}`);
});

test('metrics render valid Prometheus text with counters, a cumulative histogram and live gauges', async (t) => {
  let waiting = 3;
  const metrics = new ServerMetrics({ queueWaiting: () => waiting, searchesInFlight: () => 1, uploadsInProgress: () => 2, indexDocs: () => 12, indexChunks: () => 84 });
  metrics.observeRequest('POST', '/search', 200, 0.02);
  metrics.observeRequest('POST', '/search', 200, 0.3);
  metrics.observeRequest('GET', '/docs/:id', 404, 0.001);
  metrics.observeSearch({ decode: 5, encode: 15 });
  metrics.observeRejection();
  waiting = 4;
  const text = await metrics.render();
  t.regex(text, /^flower_http_requests_total\{method="POST",route="\/search",status="200"\} 2$/m);
  t.regex(text, /^flower_http_requests_total\{method="GET",route="\/docs\/:id",status="404"\} 1$/m);
  // prom-client writes `le` first; label order carries no meaning in the exposition format.
  t.regex(text, /^flower_http_request_duration_seconds_bucket\{le="0.025",route="\/search"\} 1$/m);
  t.regex(text, /^flower_http_request_duration_seconds_bucket\{le="0.5",route="\/search"\} 2$/m);
  t.regex(text, /^flower_http_request_duration_seconds_bucket\{le="\+Inf",route="\/search"\} 2$/m);
  t.regex(text, /^flower_http_request_duration_seconds_count\{route="\/search"\} 2$/m);
  t.regex(text, /^flower_search_stage_seconds_total\{stage="encode"\} 0.015$/m);
  t.regex(text, /^flower_search_rejected_total 1$/m);
  t.regex(text, /^flower_search_queue_depth 4$/m);
  t.regex(text, /^flower_search_uploads_in_progress 2$/m);
  t.regex(text, /^flower_index_docs 12$/m);
  t.regex(text, /^flower_index_chunks 84$/m);
  // Every sample line belongs to a family declared with # TYPE.
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const name = line.split(/[{ ]/)[0].replace(/_(bucket|sum|count)$/, '');
    t.true(families.has(name) || families.has(line.split(/[{ ]/)[0]), `undeclared metric in: ${line}`);
  }
});

test('each server has its own metrics registry: two in one process neither clash nor share counts, and the global one stays empty', async (t) => {
  const gauges = { queueWaiting: () => 0, searchesInFlight: () => 0, uploadsInProgress: () => 0, indexDocs: () => 1, indexChunks: () => 1 };
  const first = new ServerMetrics(gauges);
  const second = new ServerMetrics(gauges);
  first.observeRequest('GET', '/healthz', 200, 0.001);
  first.observeRejection();
  t.regex(await first.render(), /^flower_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1$/m);
  const other = await second.render();
  t.notRegex(other, /route="\/healthz"/);
  t.regex(other, /^flower_search_rejected_total 0$/m);
  t.notRegex(await register.metrics(), /flower_|process_/, "nothing lands on prom-client's default registry");
});

test('thumbnails are small JPEGs within the size, shared while being made, and evicted past the byte budget', async (t) => {
  const cache = new ThumbnailCache(128, 10_000);
  const read = (file: string) => () => fs.promises.readFile(file);
  const [a, b] = await Promise.all([cache.get('a', read(flowerImage(801))), cache.get('a', read(flowerImage(801)))]);
  t.is(a, b, 'concurrent requests share one thumbnail');
  const meta = await sharp(a.bytes).metadata();
  t.is(meta.format, 'jpeg');
  t.is(Math.max(meta.width, meta.height), 128);
  t.is(await cache.get('a', read('/nonexistent/file.jpg')), a, 'a cached thumbnail does not touch the file again');
  await cache.get('b', read(flowerImage(802)));
  await cache.get('c', read(flowerImage(803)));
  await t.throwsAsync(cache.get('a', read('/nonexistent/file.jpg')), undefined, 'the least recently used entry was evicted');
});
