/**
 * The crop check of the same-photo stage: is the query a quarter of an indexed picture (half its
 * width and half its height, anywhere in it)? No stored chunk sees so small a region at its scale,
 * so the query's 16 × 16 thumbnail is slid over each candidate's 32 × 32 luminance grid (33 × 33
 * positions, every half cell), and a position's score is the correlation of the query with the grid's 16 × 16
 * window there. Candidates: the docs whose 81 coarse regions (16 × 16 windows every 2 cells,
 * averaged to 8 × 8) best match the query's thumbnail averaged to 8 × 8, through the kernels' top-k.
 */
import type { Kernels } from '../kernels/index.js';
import type { RankingState } from '../store/ranking-state.js';
import { FINE_LENGTH, FINE_SIDE, THUMBNAIL_LENGTH, THUMBNAIL_SIDE, zeroMeanUnit } from './thumbnail.js';

const W = THUMBNAIL_SIDE;
const COARSE = W / 2;
const REGION_STEP = 2;
const REGIONS_PER_SIDE = (FINE_SIDE - W) / REGION_STEP + 1;
const REGIONS = REGIONS_PER_SIDE * REGIONS_PER_SIDE;
/** Docs checked at every position. */
export const CROP_CANDIDATES = 10;
/** Region rows looked up to find them (a doc's regions overlap, so its best ones come together). */
const CANDIDATE_ROWS = 1000;

/** A grid check's answer: the doc whose grid matches the query best, its correlation, and the best of the other docs (-1 when none). */
export interface GridMatch {
  doc: number;
  score: number;
  runnerUp: number;
}

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
      const region = out.subarray(base, base + COARSE * COARSE);
      zeroMeanUnit(region, region);
    }
  }
  regionCache.set(state, out);
  return out;
}

/** The query's thumbnail (zero-mean, unit, THUMBNAIL_SIDE²) averaged to COARSE², zero-mean and unit. */
function coarse(query: Float32Array): Float32Array {
  const out = new Float32Array(COARSE * COARSE);
  for (let y = 0; y < COARSE; y++)
    for (let x = 0; x < COARSE; x++) out[y * COARSE + x] = query[2 * y * W + 2 * x] + query[2 * y * W + 2 * x + 1] + query[(2 * y + 1) * W + 2 * x] + query[(2 * y + 1) * W + 2 * x + 1];
  return zeroMeanUnit(out, out);
}

/** Half-cell positions per side of the fine grid: cell p/2 when p is even, else the mean of the two cells it straddles. */
const HALF_GRID = 2 * FINE_SIDE - 1;

/** One doc's 32 × 32 grid sampled every half cell (63 × 63): a unit cell from any half-cell offset, area-averaged. */
function halfCellGrid(grid: Float32Array): Float64Array {
  const rows = new Float64Array(FINE_SIDE * HALF_GRID);
  for (let y = 0; y < FINE_SIDE; y++) {
    for (let p = 0; p < HALF_GRID; p++) {
      const at = y * FINE_SIDE + (p >> 1);
      rows[y * HALF_GRID + p] = p % 2 === 0 ? grid[at] : (grid[at] + grid[at + 1]) / 2;
    }
  }
  const out = new Float64Array(HALF_GRID * HALF_GRID);
  for (let q = 0; q < HALF_GRID; q++) {
    for (let p = 0; p < HALF_GRID; p++) {
      const at = (q >> 1) * HALF_GRID + p;
      out[q * HALF_GRID + p] = q % 2 === 0 ? rows[at] : (rows[at] + rows[at + HALF_GRID]) / 2;
    }
  }
  return out;
}

/**
 * The best correlation of the query's thumbnail with any 16 × 16 window of one doc's 32 × 32 grid,
 * its corner at any half cell (33 × 33 positions): a quarter crop starts anywhere, and a window half
 * a cell off costs its correlation as much as another photo's does.
 */
export function bestWindow(query: Float32Array, grid: Float32Array): number {
  const h = halfCellGrid(grid);
  let best = -1;
  const n = W * W;
  for (let top = 0; top + 2 * (W - 1) < HALF_GRID; top++) {
    for (let left = 0; left + 2 * (W - 1) < HALF_GRID; left++) {
      // The query is zero-mean, so its dot with the window equals its dot with the centred window.
      let dot = 0;
      let sum = 0;
      let squares = 0;
      for (let y = 0; y < W; y++) {
        const row = (top + 2 * y) * HALF_GRID + left;
        for (let x = 0; x < W; x++) {
          const v = h[row + 2 * x];
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
export function bestCrop(impl: Kernels, state: RankingState, query: Float32Array, excluded: ReadonlySet<number>): GridMatch | undefined {
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
  let best: GridMatch | undefined;
  for (const doc of candidates) {
    const score = bestWindow(query, state.fineThumbnails.subarray(doc * FINE_LENGTH, (doc + 1) * FINE_LENGTH));
    if (!best || score > best.score || (score === best.score && doc < best.doc)) best = { doc, score, runnerUp: best ? best.score : -1 };
    else best.runnerUp = Math.max(best.runnerUp, score);
  }
  return best;
}

/**
 * The centred check: is the query the middle of an indexed picture at CENTRE_SCALE of its width and
 * height (a slightly rotated copy keeps about that much; see src/eval/near-duplicates.ts)? Each doc's
 * 32 × 32 grid, cut to its central CENTRE_SCALE and area-averaged to 16 × 16, zero-mean and unit, is
 * correlated with the query's thumbnail.
 */
export const CENTRE_SCALE = 0.8;
/** The half-area check: windows at √½ of the width and height (a crop of half the area), their left and top edges at these fine cells (and flush right/bottom). */
export const HALF_SCALE = Math.SQRT1_2;
const HALF_OFFSETS = [0, 2, 4, 6, 8, FINE_SIDE * (1 - HALF_SCALE)];

interface Windows {
  readonly matrix: Float32Array;
  /** Windows per doc. */
  readonly per: number;
}
const windowCache = new WeakMap<RankingState, Map<string, Windows>>();

/** THUMBNAIL_SIDE × FINE_SIDE: how much of each fine cell falls in each cell of a window `side` cells wide from `low`. */
function windowWeights(low: number, side: number): Float64Array {
  const out = new Float64Array(W * FINE_SIDE);
  const step = side / W;
  for (let i = 0; i < W; i++) {
    const a = low + i * step;
    for (let j = 0; j < FINE_SIDE; j++) out[i * FINE_SIDE + j] = Math.max(0, Math.min(a + step, j + 1) - Math.max(a, j));
  }
  return out;
}

/** docs × offsets² rows: each doc's grid cut to windows `scale` of its side at the offsets (fine cells), area-averaged to 16 × 16, zero-mean and unit. */
function windows(state: RankingState, scale: number, offsets: readonly number[]): Windows {
  const key = `${scale}:${offsets.join(',')}`;
  let cache = windowCache.get(state);
  if (!cache) windowCache.set(state, (cache = new Map<string, Windows>()));
  const cached = cache.get(key);
  if (cached) return cached;
  const docs = state.docShas.length;
  const weights = offsets.map((low) => windowWeights(low, FINE_SIDE * scale));
  const per = offsets.length * offsets.length;
  const matrix = new Float32Array(docs * per * THUMBNAIL_LENGTH);
  const rows = new Float64Array(W * FINE_SIDE);
  for (let d = 0; d < docs; d++) {
    const grid = state.fineThumbnails.subarray(d * FINE_LENGTH, (d + 1) * FINE_LENGTH);
    for (let oy = 0; oy < offsets.length; oy++) {
      const a = weights[oy];
      rows.fill(0);
      for (let i = 0; i < W; i++)
        for (let j = 0; j < FINE_SIDE; j++) if (a[i * FINE_SIDE + j] > 0) for (let x = 0; x < FINE_SIDE; x++) rows[i * FINE_SIDE + x] += a[i * FINE_SIDE + j] * grid[j * FINE_SIDE + x];
      for (let ox = 0; ox < offsets.length; ox++) {
        const b = weights[ox];
        const base = (d * per + oy * offsets.length + ox) * THUMBNAIL_LENGTH;
        const cell = matrix.subarray(base, base + THUMBNAIL_LENGTH);
        for (let i = 0; i < W; i++) {
          for (let k = 0; k < W; k++) {
            let v = 0;
            for (let x = 0; x < FINE_SIDE; x++) v += rows[i * FINE_SIDE + x] * b[k * FINE_SIDE + x];
            cell[i * W + k] = v;
          }
        }
        zeroMeanUnit(cell, cell);
      }
    }
  }
  const out = { matrix, per };
  cache.set(key, out);
  return out;
}

/** Docs looked at past the excluded ones for a runner-up that is not a tie (identical files tie). */
const WINDOW_LOOKUP = 8;

/** The doc not excluded whose best window correlates best with the query's thumbnail, and the best of the docs that do not tie with it (-1 when none). */
function bestWindowOf(impl: Kernels, state: RankingState, query: Float32Array, excluded: ReadonlySet<number>, scale: number, offsets: readonly number[]): GridMatch | undefined {
  const docs = state.docShas.length;
  if (query.length !== THUMBNAIL_LENGTH || state.fineThumbnails.length !== docs * FINE_LENGTH || docs === 0) return undefined;
  const { matrix, per } = windows(state, scale, offsets);
  const rows = docs * per;
  const found = impl.cosineTopK({ matrix, rows, dim: THUMBNAIL_LENGTH, queries: query, k: Math.min(rows, (excluded.size + WINDOW_LOOKUP) * per) });
  let best: GridMatch | undefined;
  for (let i = 0; i < found.k; i++) {
    if (found.ids[i] < 0) continue;
    const doc = Math.floor(found.ids[i] / per);
    if (excluded.has(doc) || doc === best?.doc) continue;
    if (!best) best = { doc, score: found.scores[i], runnerUp: -1 };
    else if (found.scores[i] < best.score) return { ...best, runnerUp: found.scores[i] };
  }
  return best;
}

/** The centred check's best doc (one window per doc: its central CENTRE_SCALE). */
export function bestCentred(impl: Kernels, state: RankingState, query: Float32Array, excluded: ReadonlySet<number>): GridMatch | undefined {
  return bestWindowOf(impl, state, query, excluded, CENTRE_SCALE, [(FINE_SIDE * (1 - CENTRE_SCALE)) / 2]);
}

/** The half-area check's best doc (6 × 6 windows per doc at HALF_SCALE). */
export function bestHalf(impl: Kernels, state: RankingState, query: Float32Array, excluded: ReadonlySet<number>): GridMatch | undefined {
  return bestWindowOf(impl, state, query, excluded, HALF_SCALE, HALF_OFFSETS);
}
