/** normalizer: decodes the bytes to RGB (sharp, off the main thread) with the shorter side resized for chunking. */
import { DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, decodeImage, holdDecodingSettings } from '../image/index.js';
import type { Executor, FlowDoc } from './types.js';

export class Normalizer implements Executor {
  static readonly params = {
    shorter_side: { default: 256, int: true, min: 1 },
    max_pixels: { default: DEFAULT_MAX_PIXELS, int: true, min: 1 },
    min_side: { default: DEFAULT_MIN_SIDE, int: true, min: 1 },
    max_aspect_ratio: { default: DEFAULT_MAX_ASPECT_RATIO, min: 1 },
  };

  private releaseSettings?: () => void;

  constructor(private readonly opts: { shorter_side: number; max_pixels: number; min_side: number; max_aspect_ratio: number }) {}

  open(): void {
    this.releaseSettings = holdDecodingSettings();
  }

  close(): void {
    this.releaseSettings?.();
  }

  async process(doc: FlowDoc): Promise<void> {
    if (!doc.bytes) throw new Error(`normalizer: ${doc.uri} has no bytes (put a loader before the normalizer)`);
    doc.image = await decodeImage(
      { name: doc.uri, bytes: doc.bytes },
      { shorterSide: this.opts.shorter_side, maxPixels: this.opts.max_pixels, minSide: this.opts.min_side, maxAspectRatio: this.opts.max_aspect_ratio },
    );
  }
}
