/**
 * Region pooling (the reference, and the one in use: see poolRegions): GeM pooling of rectangles
 * of cells of a feature map, one vector per rectangle, for the encoder's `pooling: regions` mode
 * (one pass over the whole image instead of one pass per window).
 *
 * Not in the addon: with a summed-area table per channel it is about 5 operations per cell and 4
 * lookups per region (1280 × 88 cells for a 256×341 image) against ~0.6 G multiply-adds for the
 * encoder pass that made the map; bench "Encoder per flow" measures its share of that pass.
 */
import type { Box } from './types.js';

/** GeM's floor: a cell value of 0 (after ReLU) would make 0^p and its gradient-free mean degenerate. */
const GEM_EPS = 1e-6;

/**
 * The cells of a `width`×`height` feature map (`stride` input pixels per cell) a window `box` of a
 * `imageWidth`×`imageHeight` image covers: a rectangle of round(box / stride) cells starting at
 * ⌊box.x / stride⌋, and a window that touches the image's right or bottom border ends at the map's
 * (the chunker snaps its last window to the border, and the map's last cell may be a partial one);
 * a box across the whole image covers all of the map.
 */
export function regionCells(box: Box, imageWidth: number, imageHeight: number, width: number, height: number, stride: number): Box {
  const axis = (start: number, size: number, image: number, cells: number): [number, number] => {
    // A box across the whole image (the whole-image chunk) covers the whole map, partial last cell included.
    if (start <= 0 && start + size >= image) return [0, cells];
    const n = Math.max(1, Math.min(cells, Math.round(size / stride)));
    const first = start + size >= image ? cells - n : Math.floor(start / stride);
    return [Math.max(0, Math.min(cells - n, first)), n];
  };
  const [x, w] = axis(box.x, box.width, imageWidth, width);
  const [y, h] = axis(box.y, box.height, imageHeight, height);
  return { x, y, width: w, height: h };
}

/**
 * GeM pooling: for each region r and channel c, out[(outRow + r) × channels + c] =
 * (mean over the region's cells of max(v, ε)^p)^(1/p). `features` holds one map at `offset`,
 * channels × height × width (NCHW). Not normalized: the caller L2-normalizes the rows.
 */
export function gemPool(features: Float32Array, offset: number, channels: number, height: number, width: number, regions: readonly Box[], p: number, out: Float32Array, outRow: number): void {
  if (!(p > 0)) throw new RangeError(`GeM p must be > 0, got ${p}`);
  if (offset + channels * height * width > features.length) throw new RangeError(`features hold ${features.length} floats, a ${channels}x${height}x${width} map at ${offset} needs more`);
  if ((outRow + regions.length) * channels > out.length) throw new RangeError(`out holds ${out.length / channels} rows, ${outRow + regions.length} needed`);
  for (const r of regions) {
    if (!(r.width > 0 && r.height > 0 && r.x >= 0 && r.y >= 0 && r.x + r.width <= width && r.y + r.height <= height)) {
      throw new RangeError(`region ${r.width}x${r.height}+${r.x}+${r.y} is not inside the ${width}x${height} map`);
    }
  }
  const plane = height * width;
  const cube = p === 3;
  // Per channel, a summed-area table of max(v, ε)^p (float64): each region's sum is then 4 lookups,
  // where summing every region's cells would visit the cells shared by overlapping windows again and again.
  const stride = width + 1;
  const table = new Float64Array((height + 1) * stride);
  const floor = Math.pow(GEM_EPS, p);
  for (let c = 0; c < channels; c++) {
    const base = offset + c * plane;
    for (let y = 0; y < height; y++) {
      const row = base + y * width;
      const above = y * stride + 1;
      const here = above + stride;
      let sum = 0;
      if (cube) {
        for (let x = 0; x < width; x++) {
          const f = features[row + x];
          const v = f > GEM_EPS ? f : GEM_EPS;
          sum += v * v * v;
          table[here + x] = table[above + x] + sum;
        }
      } else {
        for (let x = 0; x < width; x++) {
          const f = features[row + x];
          sum += Math.pow(f > GEM_EPS ? f : GEM_EPS, p);
          table[here + x] = table[above + x] + sum;
        }
      }
    }
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      const top = r.y * stride;
      const bottom = (r.y + r.height) * stride;
      const sum = table[bottom + r.x + r.width] - table[top + r.x + r.width] - table[bottom + r.x] + table[top + r.x];
      // Differences of large sums can leave a little rounding below the true floor of ε^p per cell.
      const mean = Math.max(sum / (r.width * r.height), floor);
      out[(outRow + i) * channels + c] = cube ? Math.cbrt(mean) : Math.pow(mean, 1 / p);
    }
  }
}
