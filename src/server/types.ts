/**
 * What the server needs from the query side: the shape of `Searcher` from `src/index.ts`, narrowed
 * to the members it uses, so tests can inject a small fake and the real searcher fits as is.
 */
import type { Box } from '../kernels/types.js';

export interface ServedDoc {
  readonly id: number;
  /** Absolute path of the indexed image file (as the index recorded it). */
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  /** Source image size in pixels. */
  readonly width: number;
  readonly height: number;
  readonly label: string | null;
  readonly chunkCount: number;
}

export interface SearchHit {
  readonly rank: number;
  readonly docId: number;
  readonly score: number;
  readonly path: string;
  readonly label: string | null;
  /** Best-matching chunk of the doc, in pixels of the doc's source image (as the index stores boxes). */
  readonly box: Box;
}

export interface SearchOutcome {
  readonly results: readonly SearchHit[];
  /** Milliseconds per stage (decode, encode, topk, rank, lookup). */
  readonly timings: Readonly<Record<string, number>>;
}

export interface SearchBackend {
  search(image: Uint8Array, opts: { top: number; minScore?: number; mode?: 'bimatch' | 'whole' }): Promise<SearchOutcome>;
  readonly workspace: {
    readonly docCount: number;
    readonly chunkCount: number;
    doc(id: number): ServedDoc | undefined;
  };
}
