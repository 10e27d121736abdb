/**
 * chunker: sliding windows over the normalized image (slidingWindows: last window snapped to the
 * border, no duplicates) plus, optionally, the whole image. Only boxes here: the encoder cuts the
 * windows straight into its batch tensor, and squashes the whole image to the model input itself
 * (or, pooling regions, pools it from the image's one pass), so nothing is resized twice.
 */
import { InputError } from '../errors.js';
import { slidingWindows } from '../kernels/index.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowChunk, FlowDoc } from './types.js';

export class Chunker implements Executor {
  static readonly params = {
    window: { default: 224, int: true, min: 1 },
    stride: { default: 112, int: true, min: 1 },
    whole: { default: true },
    /** Windows one image may yield: the encoder's work per image is bounded whatever the size and stride. */
    max_chunks: { default: 64, int: true, min: 1 },
  };

  constructor(private readonly opts: { window: number; stride: number; whole: boolean; max_chunks: number }) {}

  open(ctx: ExecutorContext): void {
    const { input } = builtinServices(ctx.services, ctx.pod).model;
    if (input.width !== this.opts.window || input.height !== this.opts.window) {
      throw new Error(`pod '${ctx.pod}': window ${this.opts.window} does not match the model input ${input.width}x${input.height}`);
    }
  }

  process(doc: FlowDoc): void {
    const image = doc.image;
    if (!image) throw new Error(`chunker: ${doc.uri} has no image (put a normalizer before the chunker)`);
    const { window, stride } = this.opts;
    if (Math.min(image.width, image.height) < window) {
      throw new Error(`chunker: ${doc.uri} is ${image.width}x${image.height} after normalizing, smaller than the ${window} px window (normalizer shorter_side must be >= window)`);
    }
    const boxes = slidingWindows(image.width, image.height, window, stride);
    if (boxes.length > this.opts.max_chunks) {
      throw new InputError(doc.uri, `too many chunks: ${image.width}x${image.height} px after normalizing gives ${boxes.length} windows, limit ${this.opts.max_chunks}`, 'image_limit_exceeded');
    }
    const chunks: FlowChunk[] = boxes.map((box) => ({ kind: 'window', box, image }));
    if (this.opts.whole) chunks.push({ kind: 'whole', box: { x: 0, y: 0, width: image.width, height: image.height }, image });
    doc.chunks = chunks;
  }
}
