/**
 * The same-photo thumbnail: the picture's luminance (CIE Y, linear light) averaged down to 16 × 16
 * (aspect squashed, as the whole-image chunk is), zero-mean and unit-length, so the dot product of
 * two thumbnails is their normalized cross-correlation in [-1, 1]. It keeps the layout of light and
 * dark and nothing finer: blur, heavy JPEG, downscaling, grayscale and colour or brightness changes
 * leave it almost as it is (correlation ≥ 0.95 with its source), where they move the CNN embedding
 * of the photo further than to another photo of its class. Computed from the normalized image (the
 * normalizer's output) at index time and at query time alike.
 */
import type { RawImage } from '../kernels/types.js';

export const THUMBNAIL_SIDE = 16;
export const THUMBNAIL_LENGTH = THUMBNAIL_SIDE * THUMBNAIL_SIDE;

/** sRGB 8-bit value → linear light. */
const LINEAR = Float32Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

/** The thumbnail of an RGB (or gray, or RGBA: alpha ignored) image; all zeros for a flat one. */
export function thumbnail(image: RawImage): Float32Array {
  return zeroMeanUnit(luminanceCells(image, THUMBNAIL_SIDE));
}

/**
 * `values` made zero-mean and unit-length, into `out` (which may be `values` itself), so the dot
 * product of two such vectors is their normalized cross-correlation; all zeros for flat values.
 */
export function zeroMeanUnit(values: ArrayLike<number>, out: Float32Array = new Float32Array(values.length)): Float32Array {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i] / values.length;
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    const centred = values[i] - mean;
    norm += centred * centred;
  }
  // Below this the picture is flat (one colour): no layout to match on.
  if (norm < 1e-10) return out.fill(0);
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - mean) * scale;
  return out;
}

/** The finer grid the crop check slides the query's thumbnail over: 32 × 32 luminance means, not normalized. */
export const FINE_SIDE = 2 * THUMBNAIL_SIDE;
export const FINE_LENGTH = FINE_SIDE * FINE_SIDE;

export function fineThumbnail(image: RawImage): Float32Array {
  return Float32Array.from(luminanceCells(image, FINE_SIDE));
}

/** What the same-photo stage keeps of a doc's picture: its thumbnail and the crop check's finer grid. */
export interface PhotoThumbnails {
  readonly thumbnail: Float32Array;
  readonly fine: Float32Array;
}

export function photoThumbnails(image: RawImage): PhotoThumbnails {
  return { thumbnail: thumbnail(image), fine: fineThumbnail(image) };
}

/** Mean linear luminance of each cell of a side × side grid over the image (aspect squashed); an empty cell (image smaller than the grid) takes the mean. */
function luminanceCells(image: RawImage, side: number): Float64Array {
  const { data, width, height, channels } = image;
  const sum = new Float64Array(side * side);
  const count = new Float64Array(side * side);
  const colour = channels >= 3;
  for (let y = 0; y < height; y++) {
    const row = Math.floor((y * side) / height) * side;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      const cell = row + Math.floor((x * side) / width);
      sum[cell] += colour ? 0.2126 * LINEAR[data[i]] + 0.7152 * LINEAR[data[i + 1]] + 0.0722 * LINEAR[data[i + 2]] : LINEAR[data[i]];
      count[cell]++;
    }
  }
  let total = 0;
  let filled = 0;
  for (let c = 0; c < side * side; c++) {
    if (count[c] > 0) {
      sum[c] /= count[c];
      total += sum[c];
      filled++;
    }
  }
  const mean = filled > 0 ? total / filled : 0;
  for (let c = 0; c < side * side; c++) if (count[c] === 0) sum[c] = mean;
  return sum;
}
