/**
 * Near-identical images in an index: pairs whose whole-image chunks have a cosine of at least the
 * threshold, joined into groups (a copy of a copy is in the same group). The default, 0.98, was
 * measured on the 17-flowers fixture: its 64 exact copies (re-encodes, same pixels) all score at
 * least 0.9936 and the next pair 0.965; resized copies of the same pixels land above it too, edited
 * copies (crops, colour, blur) mostly do not: the ranking's same-photo path finds those.
 */
import type { Kernels } from '../kernels/index.js';
import { matrixIndex, type ChunkIndex } from './types.js';

export const DEFAULT_DUPLICATE_THRESHOLD = 0.98;
/** Nearest whole-image chunks looked at per doc: a group larger than this is still joined through its members. */
const NEIGHBOURS = 16;

export interface DuplicatePair {
  readonly a: number;
  readonly b: number;
  readonly score: number;
}

export interface Duplicates {
  readonly threshold: number;
  /** a < b, best first. */
  readonly pairs: DuplicatePair[];
  /** Doc ids, each group sorted, groups by their first id. */
  readonly groups: number[][];
}

export function findDuplicates(store: ChunkIndex, impl: Kernels, threshold = DEFAULT_DUPLICATE_THRESHOLD): Duplicates {
  const index = matrixIndex(store, 'finding duplicates');
  const { dim } = index;
  const all = index.matrix();
  const wholeRows = index.wholeChunkRows();
  const docs = Int32Array.from(wholeRows.keys()).filter((doc) => wholeRows[doc] >= 0);
  const matrix = new Float32Array(docs.length * dim);
  docs.forEach((doc, i) => matrix.set(all.subarray(wholeRows[doc] * dim, (wholeRows[doc] + 1) * dim), i * dim));
  const { ids, scores, k } = impl.cosineTopK({ matrix, rows: docs.length, dim, queries: matrix, k: Math.min(docs.length, NEIGHBOURS + 1) });
  const pairs: DuplicatePair[] = [];
  const parent = Int32Array.from({ length: index.docCount }, (_, i) => i);
  const root = (x: number): number => (parent[x] === x ? x : (parent[x] = root(parent[x])));
  for (let i = 0; i < docs.length; i++) {
    for (let j = i * k; j < (i + 1) * k; j++) {
      const other = ids[j];
      if (other <= i || scores[j] < threshold) continue;
      const a = docs[i];
      const b = docs[other];
      pairs.push({ a: Math.min(a, b), b: Math.max(a, b), score: scores[j] });
      parent[root(a)] = root(b);
    }
  }
  const byRoot = new Map<number, number[]>();
  for (const { a, b } of pairs) for (const doc of [a, b]) byRoot.set(root(doc), [...(byRoot.get(root(doc)) ?? []), doc]);
  const groups = [...byRoot.values()].map((g) => [...new Set(g)].sort((x, y) => x - y)).sort((x, y) => x[0] - y[0]);
  return { threshold, pairs: pairs.sort((x, y) => y.score - x.score || x.a - y.a || x.b - y.b), groups };
}
