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
  /** Time from a connection's (or keep-alive request's) start to its last header line; 408 and close beyond. 0: none. */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body; 408 and close beyond. 0: none. */
  readonly requestTimeoutMs: number;
  /** A keep-alive connection idle this long between requests is closed. */
  readonly idleTimeoutMs: number;
  /** Open connections from one client address; more are answered 429 and closed at once. 0: no limit. */
  readonly maxConnectionsPerClient: number;
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
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 5_000,
  maxConnectionsPerClient: 16,
  maxTop: 100,
  thumbSize: 256,
  thumbCacheBytes: 64 * 1024 * 1024,
};
