/**
 * Inter-process locks the kernel lets go of when the holder dies, so neither a kill -9 nor a PID
 * reused by another process (PID 1 in a container) can leave one stuck. Node has no flock(), so the
 * lock is SQLite's own POSIX record lock: the lock file is a tiny SQLite database that the holder
 * keeps in EXCLUSIVE locking mode for as long as it holds the lock. The holder's pid goes in the
 * database header's user_version, read only to name the holder in messages.
 *
 * The lock file stays in place when released (deleting it would let a second process lock a fresh
 * file while a third still waits on the old one). A POSIX lock belongs to the whole process and goes
 * away when the process closes ANY descriptor of the file, so this module never opens a lock file
 * that this process holds; nothing else should open one either.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { isErrno, writeFailure } from './files.js';

/** How often a waiter looks at a held lock again. */
const POLL_MS = 200;
/** The SQLite header field the holder's pid is kept in (user_version: 4 bytes, big-endian). */
const PID_OFFSET = 60;
const SQLITE_MAGIC = 'SQLite format 3\0';

/** The locks this process holds, by file identity (device and inode), with no descriptor opened to look. */
const held = new Set<string>();

/** Takes lock `file` (created when missing) unless a live process, this one included, holds it. Returns the release function. */
export function tryLock(file: string): (() => void) | undefined {
  if (heldHere(file)) return undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE'); // the first write takes the lock and keeps it until close
      db.pragma('journal_mode = MEMORY'); // no -journal file beside the lock
      db.pragma('synchronous = OFF'); // the pid is a hint, not data worth an fsync
      db.pragma(`user_version = ${process.pid}`);
    } catch (err) {
      db?.close();
      if (isErrno(err, 'SQLITE_BUSY')) return undefined;
      // Not a database: a pid file of an older version, or torn by a crash. Empty it in place (never
      // unlink: someone may be locking it right now) and it becomes a fresh lock database.
      if (attempt === 0 && isErrno(err, 'SQLITE_NOTADB', 'SQLITE_CORRUPT')) {
        fs.truncateSync(file, 0);
        continue;
      }
      throw new Error(`cannot take the lock ${file}: ${writeFailure(err)}`, { cause: err });
    }
    const id = fileId(file)!;
    held.add(id);
    return () => {
      if (held.delete(id)) db.close();
    };
  }
  return undefined;
}

/** The pid of the process holding lock `file`, as far as it is known. */
export function lockHolder(file: string): number | undefined {
  if (heldHere(file)) return process.pid;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const header = Buffer.alloc(PID_OFFSET + 4);
    if (fs.readSync(fd, header, 0, header.length, 0) < header.length || header.toString('latin1', 0, SQLITE_MAGIC.length) !== SQLITE_MAGIC) return undefined;
    const pid = header.readInt32BE(PID_OFFSET);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Runs `fn` holding lock `file`, first waiting for as long as a live process (this one included)
 * holds it; `onWait` hears once which process that is.
 */
export async function withLock<T>(file: string, fn: () => Promise<T>, onWait?: (pid: number | undefined) => void): Promise<T> {
  let release = tryLock(file);
  if (!release) onWait?.(lockHolder(file));
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

function heldHere(file: string): boolean {
  const id = fileId(file);
  return id !== undefined && held.has(id);
}

/** stat(), unlike open(), cannot drop this process's lock on the file. */
function fileId(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}
