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

/** Replace `file` with `data` atomically: write a temp file beside it, fsync, rename over. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** fs.rmSync that ignores a missing path. */
export function removeIfExists(p: string): void {
  fs.rmSync(p, { force: true, recursive: true });
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
