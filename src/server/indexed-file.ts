/**
 * An indexed doc's file, served only while it still holds the indexed bytes. The index records a path,
 * and whoever can write the data folder can swap another file in under it (a symlink to /etc/passwd,
 * a FIFO, other content): so the file must be a regular file of the indexed size whose sha256 is the
 * indexed one, checked on the open file itself, before a byte of it goes out.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ApiError } from './errors.js';
import type { ServedDoc } from './types.js';

type IndexedFile = Pick<ServedDoc, 'id' | 'path' | 'bytes' | 'sha256'>;

/** The verified file, open at its start: the caller streams it and the stream closes it. */
export async function openIndexedFile(doc: IndexedFile): Promise<FileHandle> {
  const handle = await openRegularFile(doc);
  try {
    const hash = createHash('sha256');
    for await (const chunk of handle.createReadStream({ start: 0, autoClose: false })) hash.update(chunk as Buffer);
    checkDigest(doc, hash.digest('hex'));
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The verified file's bytes (for thumbnails, which need them all anyway). */
export async function readIndexedFile(doc: IndexedFile): Promise<Buffer> {
  const handle = await openRegularFile(doc);
  try {
    const bytes = await handle.readFile();
    checkDigest(doc, createHash('sha256').update(bytes).digest('hex'));
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Open without blocking (a FIFO would wait for a writer) and keep it only if it is a regular file of the indexed size. */
async function openRegularFile(doc: IndexedFile): Promise<FileHandle> {
  const handle = await open(doc.path, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new ApiError('image_missing', `the image file of doc ${doc.id} is missing or unreadable (${err.code ?? err.message})`);
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw changed(doc, 'is not a regular file');
    if (stat.size !== doc.bytes) throw changed(doc, `is ${stat.size} bytes, the indexed image ${doc.bytes}`);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function checkDigest(doc: IndexedFile, sha256: string): void {
  if (sha256 !== doc.sha256) throw changed(doc, 'has other content than the indexed image');
}

function changed(doc: IndexedFile, what: string): ApiError {
  return new ApiError('image_changed', `the file at doc ${doc.id}'s indexed path ${what}; it is not served (re-index to pick up the change)`);
}
