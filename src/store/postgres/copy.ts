/**
 * PostgreSQL's binary COPY format, written straight from typed arrays: a vector goes over the wire
 * as its float32 (or float16) bits, with no number formatting or parsing on either side.
 * Format: a fixed header, then per row an int16 field count and per field an int32 byte length
 * and the value in its binary send form (big-endian); an int16 -1 ends the data.
 */
import type { VectorType } from './schema.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export type CopyField =
  | { readonly int8: number }
  | { readonly int4: number }
  | { readonly text: string | null }
  /** One row of a vector/halfvec column: `values[offset .. offset + dim)`. */
  | { readonly vector: Float32Array; readonly offset: number; readonly dim: number; readonly type: VectorType };

function fieldBytes(field: CopyField): number {
  if ('int8' in field) return 8;
  if ('int4' in field) return 4;
  if ('text' in field) return field.text === null ? 0 : Buffer.byteLength(field.text);
  return 4 + field.dim * (field.type === 'vector' ? 4 : 2);
}

/** The whole COPY ... FROM STDIN (FORMAT binary) payload for `rows`, each a list of fields in column order. */
export function binaryCopy(rows: readonly (readonly CopyField[])[]): Buffer {
  let size = SIGNATURE.length + 8 + 2;
  for (const row of rows) {
    size += 2;
    for (const field of row) size += 4 + fieldBytes(field);
  }
  const out = Buffer.allocUnsafe(size);
  let at = SIGNATURE.copy(out, 0);
  at = out.writeInt32BE(0, at); // flags
  at = out.writeInt32BE(0, at); // header extension length
  for (const row of rows) {
    at = out.writeInt16BE(row.length, at);
    for (const field of row) at = writeField(out, at, field);
  }
  out.writeInt16BE(-1, at);
  return out;
}

function writeField(out: Buffer, at: number, field: CopyField): number {
  if ('text' in field && field.text === null) return out.writeInt32BE(-1, at);
  at = out.writeInt32BE(fieldBytes(field), at);
  if ('int8' in field) return out.writeBigInt64BE(BigInt(field.int8), at);
  if ('int4' in field) return out.writeInt32BE(field.int4, at);
  if ('text' in field) return at + out.write(field.text!, at, 'utf8');
  // pgvector's send form: int16 dim, int16 unused, then the components.
  at = out.writeUInt16BE(field.dim, at);
  at = out.writeUInt16BE(0, at);
  const values = field.vector.subarray(field.offset, field.offset + field.dim);
  if (field.type === 'vector') {
    const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    bytes.copy(out, at);
    out.subarray(at, at + bytes.length).swap32(); // to big-endian
    return at + bytes.length;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) at = out.writeUInt16BE(halfBits(bits[i]), at);
  return at;
}

/** IEEE binary16 bits of the float32 with bits `f`, rounded to nearest even (as pgvector's own float4 → half cast). */
export function halfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand into place, rounding what falls off.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    const half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (half + (rest > halfway || (rest === halfway && half & 1) ? 1 : 0));
  }
  const half = sign | (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0);
}
