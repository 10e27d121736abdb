/** The server's limits and their defaults: kept apart from app.ts so the CLI can show them without loading fastify. */

export interface ServerLimits {
  /** Largest accepted upload, raw body or multipart file (413 beyond). */
  readonly maxUploadBytes: number;
  /** Largest accepted image in pixels, read from its header (422 beyond). */
  readonly maxPixels: number;
  /** Searches running at once. */
  readonly maxConcurrent: number;
  /** Searches admitted to wait beyond `maxConcurrent`; more get 429 + Retry-After. */
  readonly maxWaiting: number;
  /** A search not answered within this (queue wait included) gets 503 + Retry-After. */
  readonly searchTimeoutMs: number;
  /** Whole-request receive timeout (slow uploads get 408 from Node's HTTP server). */
  readonly requestTimeoutMs: number;
  /** Largest `top` a client may ask for. */
  readonly maxTop: number;
  /** Longest side of thumbnails, in pixels. */
  readonly thumbSize: number;
  /** Memory for cached thumbnails. */
  readonly thumbCacheBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxUploadBytes: 20 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxConcurrent: 2,
  maxWaiting: 16,
  searchTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  maxTop: 100,
  thumbSize: 256,
  thumbCacheBytes: 64 * 1024 * 1024,
};
