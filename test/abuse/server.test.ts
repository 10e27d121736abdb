/**
 * The real server, on a real small index and a real socket, under hostile and unlucky clients: each
 * abuse gets its documented answer in bounded time, the server's RSS stays within a budget, and a
 * normal search sent while the abuse goes on still finds daisies. Serial: they share one server.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import sharp from 'sharp';
import { flowerImage } from '../../bench/fixtures.js';
import { ABUSER, BYSTANDER, closedWithin, connect, dribble, isGoodSearch, mib, normalSearch, request, RSS_BUDGET_BYTES, startTarget, until, watchRss, type AbuseTarget } from './harness.js';

const LIMITS = { maxConcurrent: 1, maxWaiting: 2, headersTimeoutMs: 1000, requestTimeoutMs: 2000, idleTimeoutMs: 1000, maxConnectionsPerClient: 8 };
/** How late past a timeout the server may close a socket (its timeout checks run on an interval). */
const SLACK_MS = 1500;

let target: AbuseTarget;

test.before(async () => {
  target = await startTarget('flower-abuse', LIMITS);
});

test.after.always(async () => {
  await target?.close();
});

function withinRssBudget(t: ExecutionContext, growth: number): void {
  t.log(`RSS grew ${mib(growth)} at its peak`);
  t.true(growth < RSS_BUDGET_BYTES, `RSS grew ${mib(growth)}, over the budget of ${mib(RSS_BUDGET_BYTES)}`);
}

function errorCode(body: string): string | undefined {
  return (JSON.parse(body.slice(body.indexOf('{'))) as { error?: { code?: string } }).error?.code;
}

test.serial('an extreme-aspect image (16x20000 PNG, a few KB) is refused with 422 from its header, fast', async (t) => {
  const png = await sharp({ create: { width: 16, height: 20_000, channels: 3, background: '#3a5' } })
    .png()
    .toBuffer();
  const upload = () => request(target.port, { method: 'POST', path: '/search', headers: { 'content-type': 'image/png' }, body: png, localAddress: ABUSER });
  const rss = watchRss();
  const started = performance.now();
  const [first, second, bystander] = await Promise.all([upload(), upload(), normalSearch(target.port)]);
  const elapsed = performance.now() - started;
  withinRssBudget(t, rss.stop());
  for (const refused of [first, second]) {
    t.is(refused.status, 422);
    t.is(errorCode(refused.body), 'image_limit_exceeded');
  }
  t.true(elapsed < 5000, `answered in ${elapsed.toFixed(0)} ms`);
  t.true(isGoodSearch(bystander), `bystander: ${bystander.status} ${bystander.body.slice(0, 200)}`);
});

test.serial('slow uploads hold no queue place and are closed by the request timeout while searches go on', async (t) => {
  const image = fs.readFileSync(flowerImage(806));
  // More slow uploads than the queue has places: before the fix they took every place and searches got 429.
  const slow = LIMITS.maxConcurrent + LIMITS.maxWaiting + 2;
  const rss = watchRss();
  const sockets = await Promise.all(Array.from({ length: slow }, () => connect(target.port)));
  for (const { socket } of sockets) {
    socket.write(`POST /search HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nContent-Type: image/jpeg\r\nContent-Length: ${image.byteLength}\r\n\r\n`);
    dribble(socket, image.toString('latin1'), 100);
  }
  t.true(await until(target.port, (health) => health.queue.uploading === slow), 'the server counts them as uploading');
  t.like((JSON.parse((await request(target.port, { path: '/healthz' })).body) as { queue: object }).queue, { waiting: 0, inFlight: 0 }, 'and gives them no queue place');
  const bystander = await normalSearch(target.port);
  t.true(isGoodSearch(bystander), `bystander: ${bystander.status} ${bystander.body.slice(0, 200)}`);
  const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, LIMITS.requestTimeoutMs + SLACK_MS + 1000)));
  for (const outcome of closed) {
    t.truthy(outcome, 'the server closed the slow upload');
    if (!outcome) continue;
    t.regex(outcome.text, /^HTTP\/1\.1 408 /);
    t.is(errorCode(outcome.text), 'request_timeout');
    t.true(outcome.afterMs < LIMITS.requestTimeoutMs + SLACK_MS, `closed after ${outcome.afterMs.toFixed(0)} ms`);
  }
  withinRssBudget(t, rss.stop());
  t.true(await until(target.port, (health) => health.queue.uploading === 0), 'nothing is left uploading');
});

test.serial('slow and silent headers are closed by the headers timeout while searches go on', async (t) => {
  const rss = watchRss();
  const slowHeaders = await Promise.all(Array.from({ length: 5 }, () => connect(target.port)));
  for (const { socket } of slowHeaders) {
    socket.write(`POST /search HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n`);
    dribble(socket, `X-Slow: ${'a'.repeat(200)}`, 100);
  }
  const silent = await connect(target.port);
  const bystander = await normalSearch(target.port);
  t.true(isGoodSearch(bystander), `bystander: ${bystander.status} ${bystander.body.slice(0, 200)}`);
  for (const socket of [...slowHeaders, silent]) {
    const outcome = await closedWithin(socket, LIMITS.headersTimeoutMs + SLACK_MS + 1000);
    t.truthy(outcome, 'the server closed the connection');
    if (!outcome) continue;
    t.regex(outcome.text, /^HTTP\/1\.1 408 /);
    t.is(errorCode(outcome.text), 'request_timeout');
    t.true(outcome.afterMs < LIMITS.headersTimeoutMs + SLACK_MS, `closed after ${outcome.afterMs.toFixed(0)} ms`);
  }
  withinRssBudget(t, rss.stop());
});

test.serial('connections from one address past the per-client limit are refused with 429 at once; other addresses, and the same one later, are served', async (t) => {
  const rss = watchRss();
  const opened = await Promise.all(Array.from({ length: 3 * LIMITS.maxConnectionsPerClient }, () => connect(target.port)));
  const bystander = await normalSearch(target.port);
  t.true(isGoodSearch(bystander), `bystander: ${bystander.status} ${bystander.body.slice(0, 200)}`);
  const outcomes = await Promise.all(opened.map((socket) => closedWithin(socket, LIMITS.headersTimeoutMs + SLACK_MS + 1000)));
  const refused = outcomes.filter((outcome) => outcome && /^HTTP\/1\.1 429 /.test(outcome.text));
  t.is(refused.length, opened.length - LIMITS.maxConnectionsPerClient, 'every connection past the limit was refused');
  for (const outcome of refused) {
    t.is(errorCode(outcome!.text), 'too_many_connections');
    t.true(outcome!.afterMs < 500, `refused after ${outcome!.afterMs.toFixed(0)} ms`);
  }
  t.is(outcomes.filter((outcome) => outcome && /^HTTP\/1\.1 408 /.test(outcome.text)).length, LIMITS.maxConnectionsPerClient, 'the admitted ones idled into the headers timeout');
  withinRssBudget(t, rss.stop());
  const later = await request(target.port, { path: '/healthz', localAddress: ABUSER });
  t.is(later.status, 200, 'the address gets its places back once its connections are gone');
});

test.serial('malformed multipart (no boundary, unterminated part, no parts) is a 400 with a code while searches go on', async (t) => {
  const image = fs.readFileSync(flowerImage(806));
  const partHead = '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\nContent-Type: image/jpeg\r\n\r\n';
  const cases = [
    { name: 'no boundary', contentType: 'multipart/form-data', body: Buffer.concat([Buffer.from(partHead), image, Buffer.from('\r\n--XyZ--\r\n')]), code: 'malformed_multipart' },
    {
      name: 'unterminated part',
      contentType: 'multipart/form-data; boundary=XyZ',
      body: Buffer.concat([Buffer.from(partHead), image.subarray(0, image.byteLength >> 1)]),
      code: 'malformed_multipart',
    },
    // The multipart parser takes a body without a single delimiter for a form without parts.
    { name: 'no parts at all', contentType: 'multipart/form-data; boundary=XyZ', body: Buffer.from('hello, not a form'), code: 'empty_body' },
  ];
  const rss = watchRss();
  const [bystander, ...answers] = await Promise.all([
    normalSearch(target.port),
    ...cases.map(({ contentType, body }) => request(target.port, { method: 'POST', path: '/search', headers: { 'content-type': contentType }, body, localAddress: ABUSER })),
  ]);
  for (const [i, answer] of answers.entries()) {
    t.is(answer.status, 400, cases[i].name);
    t.is(errorCode(answer.body), cases[i].code, cases[i].name);
  }
  t.true(isGoodSearch(bystander), `bystander: ${bystander.status} ${bystander.body.slice(0, 200)}`);
  withinRssBudget(t, rss.stop());
});

test.serial('a Host the server is not bound to is refused with 421 on every route (DNS rebinding); the bound names are served', async (t) => {
  const { port } = target;
  const image = fs.readFileSync(flowerImage(806));
  const rss = watchRss();
  const bystander = normalSearch(port);
  for (const host of [`evil.example:${port}`, `localhost.evil.example:${port}`, `127.0.0.1.nip.io:${port}`, 'evil.example']) {
    for (const path of ['/', '/healthz', '/metrics', '/docs/0', '/docs/0/image', '/docs/0/thumb', '/nope']) {
      const answer = await request(port, { path, host, localAddress: ABUSER });
      t.is(answer.status, 421, `${host} ${path}`);
      t.is(errorCode(answer.body), 'host_not_allowed');
      t.notRegex(answer.body, /image_\d{4}\.jpg/, 'no indexed path leaks');
    }
    const search = await request(port, { method: 'POST', path: '/search', host, headers: { 'content-type': 'image/jpeg' }, body: image, localAddress: ABUSER });
    t.is(search.status, 421, `${host} POST /search`);
  }
  // HTTP/1.0 allows leaving Host out; a browser never does, so nothing is lost by refusing it.
  const noHost = await connect(port);
  noHost.socket.end('GET /healthz HTTP/1.0\r\n\r\n');
  t.regex((await noHost.closed).text, /^HTTP\/1\.1 421 /);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, 'localhost']) {
    t.is((await request(port, { path: '/healthz', host, localAddress: ABUSER })).status, 200, host);
  }
  const answer = await bystander;
  t.true(isGoodSearch(answer), `bystander: ${answer.status} ${answer.body.slice(0, 200)}`);
  withinRssBudget(t, rss.stop());
});

test.serial('an indexed file swapped for a symlink (to /etc/passwd or another image), a FIFO or other bytes of its size is not served', async (t) => {
  const doc = target.server.searcher.workspace.doc(0)!;
  const original = fs.readFileSync(doc.path);
  const aside = `${doc.path}.aside`;
  fs.renameSync(doc.path, aside);
  const get = (path: string) => request(target.port, { path, localAddress: BYSTANDER, timeoutMs: 3000 });
  try {
    fs.symlinkSync('/etc/passwd', doc.path);
    for (const path of ['/docs/0/image', '/docs/0/thumb']) {
      const answer = await get(path);
      t.is(answer.status, 409, `${path} with /etc/passwd swapped in`);
      t.is(errorCode(answer.body), 'image_changed');
      t.notRegex(answer.body, /root:/);
    }
    fs.rmSync(doc.path);
    fs.symlinkSync(flowerImage(900), doc.path);
    for (const path of ['/docs/0/image', '/docs/0/thumb']) t.is((await get(path)).status, 409, `${path} with another image swapped in`);
    fs.rmSync(doc.path);
    execFileSync('mkfifo', [doc.path]);
    t.is((await get('/docs/0/image')).status, 409, 'a FIFO is refused without waiting for a writer');
    fs.rmSync(doc.path);
    fs.writeFileSync(doc.path, Buffer.alloc(original.byteLength, 0x55));
    t.is((await get('/docs/0/image')).status, 409, 'same size, other bytes');
  } finally {
    fs.rmSync(doc.path, { force: true });
    fs.renameSync(aside, doc.path);
  }
  const restored = await request(target.port, { path: '/docs/0/image' });
  t.is(restored.status, 200);
  t.deepEqual(Buffer.from(restored.body, 'latin1'), original);
});
