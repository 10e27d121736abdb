/**
 * One-file HTTP(S) download into `<dest>.part`, resumed with a Range request after a cut (within
 * this call, and across runs), restarted from zero when the server ignores Range or the partial
 * turns out bad, checked (size, sha256) and only then renamed into place.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ChecksumError, NoNetworkError } from '../errors.js';
import { fsyncDir, isErrno, removeIfExists } from '../util/files.js';

export interface DownloadProgress {
  readonly url: string;
  /** The file being written (its final name). */
  readonly file: string;
  /** Bytes on disk so far, including a resumed partial. */
  readonly received: number;
  /** Full size, when the server or the caller says. */
  readonly total: number | undefined;
}

/** What a cache fill reports while it runs. */
export interface DownloadHooks {
  onProgress?: (progress: DownloadProgress) => void;
  /** Another process is filling the same cache entry: this one waits for it (said once). */
  onWait?: (message: string) => void;
}

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Expected hex sha256: checked before the file is renamed into place. */
  sha256?: string;
  /** Expected size in bytes. */
  size?: number;
  onProgress?: (progress: DownloadProgress) => void;
  /** Give up on a connection that stays silent this long (connecting or mid-transfer); default 30 s. */
  timeoutMs?: number;
  /** Resumes after a cut before giving up; default 5. */
  retries?: number;
  /** Appended to the no-network message: what to pass instead of downloading. */
  offlineHint?: string;
}

const DEFAULT_HINT = 'pass --data/--model, or set FLOWER_NATIVE_CACHE to a folder that has them';
const MAX_REDIRECTS = 10;
/** Errors that mean "cannot talk to that server" rather than "the transfer broke". */
const UNREACHABLE = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ETIMEDOUT', 'ECONNRESET'];

/** A transfer that broke after it started: resume it. */
class Interrupted extends Error {}

export async function downloadFile(opts: DownloadOptions): Promise<void> {
  const part = `${opts.dest}.part`;
  const retries = opts.retries ?? 5;
  fs.mkdirSync(path.dirname(opts.dest), { recursive: true });
  let restartedBadPartial = false;
  for (let attempt = 0; ; attempt++) {
    let resumedFrom = fileSize(part);
    if (opts.size !== undefined && resumedFrom > opts.size) {
      removeIfExists(part);
      resumedFrom = 0;
    }
    if (opts.size === undefined || resumedFrom < opts.size) {
      try {
        await transfer(opts, part, resumedFrom);
      } catch (err) {
        if (!(err instanceof Interrupted)) throw err;
        if (attempt >= retries) {
          throw new Error(`download of ${opts.url} was interrupted ${attempt + 1} times (last: ${err.message}); ${fileSize(part)} bytes are kept in ${part}, run again to resume`);
        }
        continue;
      }
    }
    try {
      await verify(opts, part);
    } catch (err) {
      // A partial left by an earlier run may be from another file version: start over once.
      if (err instanceof ChecksumError && resumedFrom > 0 && !restartedBadPartial) {
        restartedBadPartial = true;
        continue;
      }
      throw err;
    }
    break;
  }
  const fd = fs.openSync(part, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(part, opts.dest);
  fsyncDir(path.dirname(opts.dest));
}

/** One request (following redirects) appending to `part` from `offset`. */
async function transfer(opts: DownloadOptions, part: string, offset: number): Promise<void> {
  let url = opts.url;
  for (let redirects = 0; ; redirects++) {
    const res = await request(opts, url, offset);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (redirects >= MAX_REDIRECTS) throw new Error(`too many redirects downloading ${opts.url}`);
      url = new URL(res.headers.location, url).toString();
      continue;
    }
    if (status === 416) {
      res.resume();
      // The partial is already the whole file (a run killed before the rename): verify it as is.
      if (Number(/^bytes \*\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1]) === offset) return;
      // Otherwise it does not fit the file the server has now: start over.
      removeIfExists(part);
      throw new Interrupted(`the server refused to resume from byte ${offset}`);
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      const message = `HTTP ${status} ${res.statusMessage ?? ''} downloading ${url}`.replace(/ +/g, ' ');
      if (status >= 500 || status === 429) throw new Interrupted(message);
      throw new Error(message);
    }
    let start = 0;
    let total = opts.size;
    if (status === 206) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
      if (!range || Number(range[1]) !== offset) {
        res.resume();
        removeIfExists(part);
        throw new Interrupted(`the server answered a resume from byte ${offset} with range ${res.headers['content-range'] ?? '(none)'}`);
      }
      start = offset;
      if (range[2] !== '*') total ??= Number(range[2]);
    } else if (res.headers['content-length'] !== undefined) {
      // 200: the server ignored Range (or there was none): the body is the whole file.
      total ??= Number(res.headers['content-length']);
    }
    const expectedBody = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
    let received = start;
    let bodyBytes = 0;
    opts.onProgress?.({ url: opts.url, file: opts.dest, received, total });
    // Written synchronously as it arrives, so whatever came before a cut is on disk to resume from.
    const fd = fs.openSync(part, status === 206 ? 'a' : 'w');
    try {
      await new Promise<void>((resolve, reject) => {
        res.on('data', (chunk: Buffer) => {
          try {
            for (let done = 0; done < chunk.length;) done += fs.writeSync(fd, chunk, done);
          } catch (err) {
            reject(new Error(`cannot write ${part}: ${(err as Error).message}`));
            res.destroy();
            return;
          }
          received += chunk.length;
          bodyBytes += chunk.length;
          opts.onProgress?.({ url: opts.url, file: opts.dest, received, total });
        });
        res.on('end', resolve);
        res.on('error', (err) => reject(new Interrupted(`connection lost after ${received} bytes: ${err.message}`)));
        res.on('close', () => {
          if (!res.complete) reject(new Interrupted(`connection lost after ${received} bytes`));
        });
      });
    } finally {
      fs.closeSync(fd);
    }
    if (expectedBody !== undefined && bodyBytes !== expectedBody) {
      throw new Interrupted(`connection closed after ${bodyBytes} of ${expectedBody} bytes`);
    }
    return;
  }
}

/** Send the GET; resolves on the response head. Failing to get one means no network. */
function request(opts: DownloadOptions, url: string, offset: number): Promise<http.IncomingMessage> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const hint = opts.offlineHint ?? DEFAULT_HINT;
  return new Promise((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(new Error(`not a valid download address: ${url}`));
      return;
    }
    const client = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : undefined;
    if (!client) {
      reject(new Error(`unsupported download address (http or https only): ${url}`));
      return;
    }
    const headers: Record<string, string> = { 'user-agent': 'flower-native', 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const req = client.get(parsed, { headers });
    let answered = false;
    // Idle timeout on the socket: covers connecting, waiting for the head, and a stalled body.
    req.setTimeout(timeoutMs, () => {
      const err = Object.assign(new Error(`no data for ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' });
      req.destroy(err);
    });
    req.on('response', (res) => {
      answered = true;
      resolve(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return; // reported by the body stream
      if (isErrno(err, ...UNREACHABLE)) {
        const reason = err.code === 'ETIMEDOUT' ? `no answer in ${timeoutMs / 1000} s` : err.code!;
        // A reset or a silence after part of the file arrived is a cut worth resuming.
        reject(offset > 0 && (err.code === 'ECONNRESET' || err.code === 'ETIMEDOUT') ? new Interrupted(reason) : new NoNetworkError(url, reason, hint));
      } else {
        reject(new Error(`downloading ${url} failed: ${err.message}`));
      }
    });
  });
}

async function verify(opts: DownloadOptions, part: string): Promise<void> {
  const size = fileSize(part);
  if (opts.size !== undefined && size !== opts.size) {
    removeIfExists(part);
    throw new ChecksumError(opts.url, `${opts.size} bytes`, `${size} bytes`);
  }
  if (opts.sha256 === undefined) return;
  const actual = await sha256File(part);
  if (actual !== opts.sha256.toLowerCase()) {
    removeIfExists(part);
    throw new ChecksumError(opts.url, `sha256 ${opts.sha256}`, `sha256 ${actual}`);
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
}
