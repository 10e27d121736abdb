/**
 * The chunk matrix file: a NumPy .npy (format 1.0) of little-endian float32, C order, rows × dim.
 * The header is always NPY_DATA_OFFSET bytes, so the data starts 64-byte aligned and the shape can
 * be rewritten in place as rows are appended (numpy itself pads headers the same way for growth).
 */
import fs from 'node:fs';
import os from 'node:os';

/** Where the float32 data starts in every matrix file this package writes. */
export const NPY_DATA_OFFSET = 128;

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
const PREAMBLE = MAGIC.length + 2 + 2; // magic, version 1.0, uint16 header length

if (os.endianness() !== 'LE') {
  // The matrix is written straight from Float32Array memory and declared '<f4'.
  throw new Error('flower-native stores float32 little-endian matrices and needs a little-endian machine');
}

/** The complete NPY_DATA_OFFSET-byte header for a rows × dim float32 matrix. */
export function npyHeader(rows: number, dim: number): Buffer {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(dim) || dim <= 0) {
    throw new RangeError(`npy shape must be non-negative integers, got (${rows}, ${dim})`);
  }
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const headerLength = NPY_DATA_OFFSET - PREAMBLE;
  // Spaces pad the dict, and the header ends in a newline, as the format asks.
  const text = dict.padEnd(headerLength - 1, ' ') + '\n';
  const header = Buffer.alloc(NPY_DATA_OFFSET);
  MAGIC.copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(headerLength, 8);
  header.write(text, PREAMBLE, 'latin1');
  return header;
}

export interface NpyInfo {
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: number[];
  /** Byte offset of the first element. */
  readonly dataOffset: number;
}

/** Parse the header of any .npy v1/v2/v3 file (enough of the format to check what we wrote). */
export function parseNpyHeader(bytes: Uint8Array, file = 'npy file'): NpyInfo {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREAMBLE || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error(`${file}: not a .npy file (bad magic)`);
  }
  const major = buf[6];
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (buf.length < dataOffset) throw new Error(`${file}: truncated .npy header`);
  const text = buf.subarray(8 + lengthBytes, dataOffset).toString('latin1');
  const descr = /'descr':\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw new Error(`${file}: unreadable .npy header ${JSON.stringify(text.trim())}`);
  }
  return {
    descr,
    fortranOrder: fortran === 'True',
    shape: shape
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number),
    dataOffset,
  };
}

/** Read and check the header of a matrix file written by this package; returns its row count. */
export function readMatrixHeader(fd: number, file: string, dim: number): number {
  const head = Buffer.alloc(NPY_DATA_OFFSET);
  const got = fs.readSync(fd, head, 0, NPY_DATA_OFFSET, 0);
  const info = parseNpyHeader(head.subarray(0, got), file);
  if (info.descr !== '<f4' || info.fortranOrder || info.shape.length !== 2 || info.shape[1] !== dim || info.dataOffset !== NPY_DATA_OFFSET) {
    throw new Error(`${file}: expected a C-order '<f4' matrix of ${dim} columns with data at byte ${NPY_DATA_OFFSET}, found ${info.descr} shape (${info.shape.join(', ')}) at byte ${info.dataOffset}`);
  }
  return info.shape[0];
}
