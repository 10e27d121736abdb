/**
 * Graceful shutdown of `serve` in a child process: SIGTERM arrives while a search request is in
 * flight (its upload half sent); the server stops accepting, the request still completes with
 * its results, and the process exits 0. And the command line's connection limits reach the server.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { flowerImage, projectRoot } from '../bench/fixtures.js';
import { buildSmallIndex, type SmallIndex } from '../bench/small-index.js';

let index: SmallIndex;

test.before(async () => {
  index = await buildSmallIndex('flower-server-shutdown');
});

test.after.always(() => index?.cleanup());

/** `flower-native serve` (the built CLI) in its own process, on a free port. */
function startServeProcess(workspace: string, extraArgs: readonly string[] = []) {
  const cli = path.join(projectRoot, 'dist/src/cli/main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--workspace', workspace, '--port', '0', '--no-log', ...extraArgs], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitForStderr = (pattern: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(stderr);
        if (match) {
          clearInterval(timer);
          resolve(match);
        }
      };
      const timer = setInterval(check, 20);
      setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`no ${pattern} on the server's stderr within ${timeoutMs} ms:\n${stderr}`));
      }, timeoutMs).unref();
      check();
    });
  return { child, exited, waitForStderr, stderr: () => stderr };
}

/** Read one whole HTTP response off a socket. */
function readResponse(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve(text));
  });
}

test('SIGTERM lets an in-flight search finish, refuses new connections, then exits 0', async (t) => {
  const server = startServeProcess(index.workspace);
  const [, url] = await server.waitForStderr(/listening on (http:\/\/\S+)/);
  const { hostname, port } = new URL(url);

  // A search whose upload is only half sent: in flight, holding a queue ticket.
  const image = fs.readFileSync(flowerImage(805));
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const response = readResponse(socket);
  socket.write(`POST /search?top=3 HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: image/jpeg\r\nContent-Length: ${image.byteLength}\r\n\r\n`);
  socket.write(image.subarray(0, image.byteLength >> 1));
  // The server is receiving it once /healthz counts it as uploading.
  for (let uploading = 0; uploading !== 1;) {
    const health = (await await fetch(new URL('/healthz', url)).then((r) => r.json())) as { queue: { uploading: number } };
    uploading = health.queue.uploading;
  }

  server.child.kill('SIGTERM');
  await server.waitForStderr(/SIGTERM, finishing in-flight requests/);
  await t.throwsAsync(fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(5000) }), undefined, 'no new connections once shutting down');

  socket.write(image.subarray(image.byteLength >> 1));
  const raw = await response;
  t.regex(raw, /^HTTP\/1\.1 200 /, 'the in-flight request completed');
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { results: { label: string }[] };
  t.is(body.results.length, 3);
  t.is(body.results[0].label, 'daisy');

  t.is(await server.exited, 0, server.stderr());
  t.regex(server.stderr(), /stopped/);
});

test('serve enforces --request-timeout-ms, --headers-timeout-ms, --max-connections-per-client and --allowed-hosts', async (t) => {
  const server = startServeProcess(index.workspace, ['--request-timeout-ms', '1500', '--headers-timeout-ms', '800', '--max-connections-per-client', '3', '--allowed-hosts', 'flowers.lan,other.lan']);
  try {
    const [, url] = await server.waitForStderr(/listening on (http:\/\/\S+)/);
    const { hostname, port } = new URL(url);
    const open = async (): Promise<{ socket: net.Socket; response: Promise<string>; opened: number }> => {
      const socket = net.connect(Number(port), hostname);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      return { socket, response: readResponse(socket), opened: performance.now() };
    };
    // A slow upload: its headers in, its body never finished.
    const slowBody = await open();
    slowBody.socket.write(`POST /search HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nabc`);
    // Slow headers: never finished.
    const slowHeaders = await open();
    slowHeaders.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nX-Slow: a`);
    const third = await open();
    // The fourth connection from this address is one too many.
    const fourth = await open();
    t.regex(await fourth.response, /^HTTP\/1\.1 429 [^]*too_many_connections/);
    const closedIn = async ({ response, opened }: { response: Promise<string>; opened: number }): Promise<[string, number]> => [await response, performance.now() - opened];
    const [headersAnswer, headersMs] = await closedIn(slowHeaders);
    t.regex(headersAnswer, /^HTTP\/1\.1 408 /);
    t.true(headersMs < 800 + 1500, `slow headers closed after ${headersMs.toFixed(0)} ms`);
    const [bodyAnswer, bodyMs] = await closedIn(slowBody);
    t.regex(bodyAnswer, /^HTTP\/1\.1 408 [^]*request_timeout/);
    t.true(bodyMs < 1500 + 1500, `slow body closed after ${bodyMs.toFixed(0)} ms`);
    third.socket.destroy();
    const hostStatus = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http.get({ host: hostname, port, path: '/healthz', headers: { host }, agent: false }, (response) => resolve(response.resume().statusCode ?? 0)).on('error', reject);
      });
    t.is(await hostStatus(`flowers.lan:${port}`), 200);
    t.is(await hostStatus(`${hostname}:${port}`), 200, 'the bound address stays allowed');
    t.is(await hostStatus('evil.example'), 421);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
