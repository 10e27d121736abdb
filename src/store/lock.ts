/**
 * Lock files holding the holder's pid (stale when that process is gone): one writer per workspace,
 * one filler per cache entry.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isErrno, removeIfExists } from './fsutil.js';

const WORKSPACE_LOCK = '.lock';
/** How often a waiter looks at a held lock again. */
const POLL_MS = 200;

/** Takes the workspace's lock or throws, naming the process that holds it. Returns the release function. */
export function acquireWriteLock(dir: string): () => void {
  const file = path.join(dir, WORKSPACE_LOCK);
  const release = tryLock(file);
  if (release) return release;
  throw new Error(`workspace ${dir} is being written by process ${readLockPid(file)}: wait for it to finish (or remove ${file} if that process is gone)`);
}

/** Takes the workspace's lock unless a live process holds it. */
export function tryWriteLock(dir: string): (() => void) | undefined {
  return tryLock(path.join(dir, WORKSPACE_LOCK));
}

/**
 * Runs `fn` holding lock `file`, first waiting for as long as a live process (this one included)
 * holds it; `onWait` hears once which process that is.
 */
export async function withLock<T>(file: string, fn: () => Promise<T>, onWait?: (pid: number | undefined) => void): Promise<T> {
  let release = tryLock(file);
  if (!release) onWait?.(readLockPid(file));
  while (!release) {
    await sleep(POLL_MS);
    release = tryLock(file);
  }
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Takes lock `file` unless a live process holds it; clears a stale one. Returns the release function. */
function tryLock(file: string): (() => void) | undefined {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => removeIfExists(file);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const pid = readLockPid(file);
      if (pid === undefined ? justCreated(file) : processAlive(pid)) return undefined;
      removeIfExists(file); // stale: its holder died (kill -9 leaves this behind)
    }
  }
  return undefined;
}

function readLockPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid yet may be a holder between creating and writing it. */
function justCreated(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs < 5_000;
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}
