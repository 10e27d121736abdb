/** Small crash-safety helpers for files: used by the store, the downloader and the locks. */
import fs from 'node:fs';
import path from 'node:path';

/** Make a directory's entries (creations, renames, unlinks) durable. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
    if (!isErrno(err, 'EISDIR', 'EINVAL', 'EPERM', 'EBADF')) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Replace `file` with `data` atomically: write a temp file beside it, fsync, rename over. A failure leaves no temp file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    removeIfExists(tmp);
    throw writeError(file, err);
  }
  fsyncDir(path.dirname(file));
}

/** The error for a failed write to `file`: it names the file, and a full disk in words (fs's ENOSPC and SQLite's SQLITE_FULL alike). */
export function writeError(file: string, err: unknown): Error {
  return new Error(`cannot write ${file}: ${writeFailure(err)}`, { cause: err });
}

/** Why a write failed, in words. */
export function writeFailure(err: unknown): string {
  return isErrno(err, 'ENOSPC', 'EDQUOT', 'SQLITE_FULL') ? `no space left on device (${(err as NodeJS.ErrnoException).code})` : (err as Error).message;
}

/** fs.rmSync that ignores a missing path. */
export function removeIfExists(p: string): void {
  fs.rmSync(p, { force: true, recursive: true });
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
