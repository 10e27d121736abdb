/**
 * Thumbnails of indexed images, made on first request with sharp and kept in a byte-bounded LRU,
 * so a results grid costs one resize per doc per server lifetime.
 */
import sharp from 'sharp';

export interface Thumbnail {
  readonly bytes: Buffer;
  readonly contentType: string;
}

export class ThumbnailCache {
  private readonly entries = new Map<string, Thumbnail>();
  /** Thumbnails being made now, so concurrent requests for one doc share the work. */
  private readonly pending = new Map<string, Promise<Thumbnail>>();
  private cachedBytes = 0;

  constructor(
    /** Longest side of a thumbnail, in pixels. */
    readonly size: number,
    /** Total bytes of cached thumbnails before the least recently used are dropped. */
    readonly maxBytes: number,
  ) {}

  /** The thumbnail of the image `load` reads (called on a miss only), cached under `key` (use something that changes when the image does). */
  async get(key: string, load: () => Promise<Uint8Array>): Promise<Thumbnail> {
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert to mark it most recently used (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    let making = this.pending.get(key);
    if (!making) {
      making = this.make(load).finally(() => this.pending.delete(key));
      this.pending.set(key, making);
      making.then(
        (thumb) => this.store(key, thumb),
        () => {},
      );
    }
    return making;
  }

  private async make(load: () => Promise<Uint8Array>): Promise<Thumbnail> {
    const bytes = await sharp(await load(), { failOn: 'error', pages: 1 })
      .autoOrient()
      .resize(this.size, this.size, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .jpeg({ quality: 80, mozjpeg: false })
      .toBuffer();
    return { bytes, contentType: 'image/jpeg' };
  }

  private store(key: string, thumb: Thumbnail): void {
    if (thumb.bytes.byteLength > this.maxBytes || this.entries.has(key)) return;
    this.entries.set(key, thumb);
    this.cachedBytes += thumb.bytes.byteLength;
    for (const [oldKey, old] of this.entries) {
      if (this.cachedBytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.cachedBytes -= old.bytes.byteLength;
    }
  }
}
