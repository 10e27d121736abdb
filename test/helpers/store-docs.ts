/** Deterministic documents for the store tests: doc i always has the same hash, chunks and vectors. */
import { createHash } from 'node:crypto';
import type { NewDoc } from '../../src/store/index.js';
import { prng } from './prng.js';

export function docSha(i: number): string {
  return createHash('sha256').update(`doc-${i}`).digest('hex');
}

/** Doc i: 1 + i % 4 windows and one whole-image chunk, L2-normalized random rows. */
export function makeDoc(i: number, dim: number): NewDoc {
  const windows = 1 + (i % 4);
  const chunks: NewDoc['chunks'] = [];
  for (let w = 0; w < windows; w++) chunks.push({ kind: 'window', box: { x: w * 112, y: 0, width: 224, height: 224 } });
  chunks.push({ kind: 'whole', box: { x: 0, y: 0, width: 300 + i, height: 256 } });
  const vectors = new Float32Array(chunks.length * dim);
  const rand = prng(i + 1);
  for (let r = 0; r < chunks.length; r++) {
    const row = vectors.subarray(r * dim, (r + 1) * dim);
    let norm = 0;
    for (let k = 0; k < dim; k++) {
      row[k] = rand() - 0.5;
      norm += row[k] * row[k];
    }
    const inv = 1 / Math.sqrt(norm);
    for (let k = 0; k < dim; k++) row[k] *= inv;
  }
  return { path: `img/doc-${i}.jpg`, sha256: docSha(i), bytes: 1000 + i, width: 300 + i, height: 256, label: `class-${i % 3}`, chunks, vectors };
}

export const testModel = (dim: number, sha = 'a'.repeat(64)) => ({ name: 'test-model', sha256: sha, dim });
export const testChunking = { shorterSide: 256, window: 224, stride: 112, whole: true };
