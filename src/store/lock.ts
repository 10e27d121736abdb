/** One writer per workspace: a lock file holding the writer's pid (stale when that process is gone). */
import fs from 'node:fs';
import path from 'node:path';
import { isErrno, removeIfExists } from './fsutil.js';

const LOCK_FILE = '.lock';

/** Takes the lock or throws, naming the process that holds it. Returns the release function. */
export function acquireWriteLock(dir: string): () => void {
  const release = tryWriteLock(dir);
  if (release) return release;
  const pid = readLockPid(path.join(dir, LOCK_FILE));
  throw new Error(`workspace ${dir} is being written by process ${pid}: wait for it to finish (or remove ${path.join(dir, LOCK_FILE)} if that process is gone)`);
}

/** Takes the lock unless a live process holds it; clears a stale one. */
export function tryWriteLock(dir: string): (() => void) | undefined {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => removeIfExists(file);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const pid = readLockPid(file);
      if (pid !== undefined && processAlive(pid)) return undefined;
      removeIfExists(file); // stale: its writer died (kill -9 leaves this behind)
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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}
