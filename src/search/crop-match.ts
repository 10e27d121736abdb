/**
 * The crop check of the same-photo stage: is the query a quarter of an indexed picture (half its
 * width and half its height, anywhere in it)? No stored chunk sees so small a region at its scale,
 * so the query's 16 × 16 thumbnail is slid over each candidate's 32 × 32 luminance grid (17 × 17
 * positions), and a position's score is the correlation of the query with the grid's 16 × 16
 * window there. Candidates: the docs whose 81 coarse regions (16 × 16 windows every 2 cells,
 * averaged to 8 × 8) best match the query's thumbnail averaged to 8 × 8, through the kernels' top-k.
 */
import type { Kernels } from '../kernels/index.js';
import type { RankingState } from '../store/ranking-state.js';
import { normalizeRows } from './linalg.js';
import { FINE_LENGTH, FINE_SIDE, THUMBNAIL_LENGTH, THUMBNAIL_SIDE } from './thumbnail.js';

const W = THUMBNAIL_SIDE;
const COARSE = W / 2;
const REGION_STEP = 2;
const REGIONS_PER_SIDE = (FINE_SIDE - W) / REGION_STEP + 1;
const REGIONS = REGIONS_PER_SIDE * REGIONS_PER_SIDE;
/** Docs checked at every position. */
export const CROP_CANDIDATES = 10;
/** Region rows looked up to find them (a doc's regions overlap, so its best ones come together). */
const CANDIDATE_ROWS = 1000;

/** docs × REGIONS rows of COARSE² values: each doc's half-size regions, averaged down, zero-mean and unit (zero for a doc without a grid). */
const regionCache = new WeakMap<RankingState, Float32Array>();

function regions(state: RankingState): Float32Array {
  let out = regionCache.get(state);
  if (out) return out;
  const docs = state.docShas.length;
  out = new Float32Array(docs * REGIONS * COARSE * COARSE);
  for (let d = 0; d < docs; d++) {
    const grid = state.fineThumbnails.subarray(d * FINE_LENGTH, (d + 1) * FINE_LENGTH);
    for (let r = 0; r < REGIONS; r++) {
      const top = Math.floor(r / REGIONS_PER_SIDE) * REGION_STEP;
      const left = (r % REGIONS_PER_SIDE) * REGION_STEP;
      const base = (d * REGIONS + r) * COARSE * COARSE;
      for (let y = 0; y < COARSE; y++) {
        for (let x = 0; x < COARSE; x++) {
          const at = (top + 2 * y) * FINE_SIDE + left + 2 * x;
          out[base + y * COARSE + x] = (grid[at] + grid[at + 1] + grid[at + FINE_SIDE] + grid[at + FINE_SIDE + 1]) / 4;
        }
      }
      centre(out.subarray(base, base + COARSE * COARSE));
    }
  }
  regionCache.set(state, out);
  return out;
}

/** Zero-mean, unit length in place (all zeros when flat). */
function centre(v: Float32Array): Float32Array {
  let mean = 0;
  for (const x of v) mean += x / v.length;
  for (let i = 0; i < v.length; i++) v[i] -= mean;
  let norm = 0;
  for (const x of v) norm += x * x;
  return norm < 1e-10 ? v.fill(0) : normalizeRows(v, v.length);
}

/** The query's thumbnail (zero-mean, unit, THUMBNAIL_SIDE²) averaged to COARSE², zero-mean and unit. */
function coarse(query: Float32Array): Float32Array {
  const out = new Float32Array(COARSE * COARSE);
  for (let y = 0; y < COARSE; y++)
    for (let x = 0; x < COARSE; x++) out[y * COARSE + x] = query[2 * y * W + 2 * x] + query[2 * y * W + 2 * x + 1] + query[(2 * y + 1) * W + 2 * x] + query[(2 * y + 1) * W + 2 * x + 1];
  return centre(out);
}

/** The best correlation of the query's thumbnail with any 16 × 16 window of one doc's 32 × 32 grid. */
export function bestWindow(query: Float32Array, grid: Float32Array): number {
  let best = -1;
  const n = W * W;
  for (let top = 0; top + W <= FINE_SIDE; top++) {
    for (let left = 0; left + W <= FINE_SIDE; left++) {
      // The query is zero-mean, so its dot with the window equals its dot with the centred window.
      let dot = 0;
      let sum = 0;
      let squares = 0;
      for (let y = 0; y < W; y++) {
        const row = (top + y) * FINE_SIDE + left;
        for (let x = 0; x < W; x++) {
          const v = grid[row + x];
          dot += query[y * W + x] * v;
          sum += v;
          squares += v * v;
        }
      }
      const variance = squares - (sum * sum) / n;
      if (variance > 1e-12) best = Math.max(best, dot / Math.sqrt(variance));
    }
  }
  return best;
}

/** The doc not excluded whose grid holds the best window for the query, with that window's correlation and the next candidate's best (-1 when none). */
export function bestCrop(impl: Kernels, state: RankingState, query: Float32Array, excluded: ReadonlySet<number>): { doc: number; score: number; runnerUp: number } | undefined {
  const docs = state.docShas.length;
  if (query.length !== THUMBNAIL_LENGTH || state.fineThumbnails.length !== docs * FINE_LENGTH || docs === 0) return undefined;
  const matrix = regions(state);
  const rows = docs * REGIONS;
  const found = impl.cosineTopK({ matrix, rows, dim: COARSE * COARSE, queries: coarse(query), k: Math.min(rows, CANDIDATE_ROWS + excluded.size * REGIONS) });
  const candidates: number[] = [];
  for (let i = 0; i < found.k && candidates.length < CROP_CANDIDATES; i++) {
    const row = found.ids[i];
    if (row < 0) continue;
    const doc = Math.floor(row / REGIONS);
    if (!excluded.has(doc) && !candidates.includes(doc)) candidates.push(doc);
  }
  let best: { doc: number; score: number; runnerUp: number } | undefined;
  for (const doc of candidates) {
    const score = bestWindow(query, state.fineThumbnails.subarray(doc * FINE_LENGTH, (doc + 1) * FINE_LENGTH));
    if (!best || score > best.score || (score === best.score && doc < best.doc)) best = { doc, score, runnerUp: best ? best.score : -1 };
    else best.runnerUp = Math.max(best.runnerUp, score);
  }
  return best;
}
