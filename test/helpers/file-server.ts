/** A local HTTP file server for the download tests (127.0.0.1 only), with switchable misbehaviour. */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface Misbehaviour {
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange?: boolean;
  /** Cut the connection after this many body bytes, for the next `cuts` responses. */
  cutAfter?: number;
  cuts?: number;
  /** Accept connections but never answer. */
  silent?: boolean;
}

export interface FileServer {
  readonly url: string;
  /** Every request seen: path and Range header. */
  readonly requests: { path: string; range: string | undefined }[];
  misbehave: Misbehaviour;
  close(): Promise<void>;
}

/** Serves files under `root`; `/redirect/<path>` answers 302 to `/<path>`. */
export async function startFileServer(root: string): Promise<FileServer> {
  const requests: FileServer['requests'] = [];
  const state: { misbehave: Misbehaviour } = { misbehave: {} };
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ path: urlPath, range: req.headers.range });
    const m = state.misbehave;
    if (m.silent) return;
    if (urlPath.startsWith('/redirect/')) {
      res.writeHead(302, { location: urlPath.slice('/redirect'.length) }).end();
      return;
    }
    const file = path.join(root, urlPath);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = fs.readFileSync(file);
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !m.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const rest = body.subarray(start);
    if (m.cuts && m.cutAfter !== undefined) {
      m.cuts -= 1;
      res.write(rest.subarray(0, m.cutAfter), () => res.socket?.destroy());
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get misbehave() {
      return state.misbehave;
    },
    set misbehave(value: Misbehaviour) {
      state.misbehave = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
