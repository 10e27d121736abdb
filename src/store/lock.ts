/** One writer per workspace: an OS-level lock on `<workspace>/.lock` (util/lock.ts), so a killed writer never leaves it stuck. */
import path from 'node:path';
import { IndexLockedError } from '../errors.js';
import { lockHolder, tryLock } from '../util/lock.js';

export const LOCK_FILE = '.lock';

/** Takes the workspace's lock or throws IndexLockedError, naming the process that holds it. Returns the release function. */
export function acquireWriteLock(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const release = tryLock(file);
  if (release) return release;
  const pid = lockHolder(file);
  throw new IndexLockedError(dir, `workspace ${dir} is being written by ${pid === undefined ? 'another process' : `process ${pid}`}: wait for it to finish`);
}

/** Takes the workspace's lock unless a live process holds it. */
export function tryWriteLock(dir: string): (() => void) | undefined {
  return tryLock(path.join(dir, LOCK_FILE));
}
