/**
 * The hot paths of the flows, behind one interface. `ts.ts` is the reference
 * implementation (and the test oracle); `native.ts` wraps the C++ addon. Both validate
 * nothing themselves: `index.ts` checks arguments once, before either runs.
 */

/** A decoded image: interleaved uint8 pixels, row-major (HWC). */
export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** 1 = gray (replicated to R, G and B), 3 = RGB, 4 = RGBA (alpha ignored). */
  readonly channels: 1 | 3 | 4;
}

/** A crop rectangle in pixel coordinates of the image it is cut from. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Per-channel normalization in 0..1 units: value = (pixel / 255 - mean[c]) / std[c]. */
export interface Normalization {
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

export interface TopKResult {
  /** Number of result slots per query: min(k, rows). */
  readonly k: number;
  /** queries × k row ids, best first; -1 where no row was left to fill a slot (NaN rows are never returned). */
  readonly ids: Int32Array;
  /** queries × k cosine similarities matching `ids`; -Infinity in unfilled slots. */
  readonly scores: Float32Array;
}

export interface TopKInput {
  /** rows × dim, row-major, each row L2-normalized (zero rows score 0). */
  readonly matrix: Float32Array;
  readonly rows: number;
  readonly dim: number;
  /** queries × dim, row-major, each row L2-normalized. */
  readonly queries: Float32Array;
  readonly k: number;
}

export interface BiMatchInput {
  /** Top-k output for the query's chunks (ids < 0 are ignored). */
  readonly topk: TopKResult;
  /** Number of query chunks (rows of the top-k output). */
  readonly queryChunks: number;
  /** For every stored chunk row, the index of the doc it belongs to. */
  readonly chunkDoc: Int32Array;
  /** For every doc index, how many chunks it has. */
  readonly docChunkCounts: Int32Array;
}

export interface BiMatchResult {
  /** Doc indexes, best first; ties broken by lower doc index. */
  readonly docs: Int32Array;
  /** BiMatch score per entry of `docs`, in [0, 1]. */
  readonly scores: Float64Array;
  /** For every entry of `docs`, the stored chunk row of its best (lowest-distance) match. */
  readonly bestChunks: Int32Array;
}

export interface SymmetricEigen {
  /** n eigenvalues, largest first. */
  readonly values: Float64Array;
  /** n × n, row i the unit eigenvector of values[i]. */
  readonly vectors: Float64Array;
}

/** Distance charged for every chunk a side did not hit, as the original BiMatch ranker does. */
export const D_MISS = 2000;

export interface Kernels {
  /** "native" or "ts". */
  readonly name: string;
  /** SIMD path in use ("avx512", "avx2", "neon", "scalar"; "none" for TS). */
  readonly simd: string;
  /**
   * Crop every box (all the same width × height) out of `image`, convert to planar RGB and
   * normalize, writing box i at float offset `(firstSlot + i) * 3 * width * height` of `out`
   * (NCHW, ready to be an ONNX input tensor). One pass per box: crop + layout + normalize.
   */
  extractChunks(image: RawImage, boxes: readonly Box[], norm: Normalization, out: Float32Array, firstSlot: number): void;
  /** Cosine top-k of every query row over every matrix row; ties broken by lower row id. */
  cosineTopK(input: TopKInput): TopKResult;
  /** Same as `cosineTopK`, off the event loop where the implementation can. */
  cosineTopKAsync(input: TopKInput): Promise<TopKResult>;
  /** BiMatch doc ranking (see D_MISS) of one query's top-k chunk matches. */
  biMatch(input: BiMatchInput): BiMatchResult;
  /**
   * Eigenvalues (descending) and eigenvectors of the symmetric n × n matrix `a` (row-major; only
   * read). `vectors` row i is the unit eigenvector of `values[i]`, its largest-magnitude component
   * (the first such) positive, so both implementations give the same vectors.
   */
  symmetricEigen(a: Float64Array, n: number): SymmetricEigen;
  /**
   * `out[i * p + j] = a_i · b_j` for the m rows of `a` and the p rows of `b` (both row-major,
   * `dim` wide): an m × p matrix. Native sums each product in float32 as its top-k does (bit for
   * bit the same score), TS in float64 rounded once. Non-finite entries propagate (IEEE).
   */
  multiplyRows(a: Float32Array, b: Float32Array, dim: number): Float32Array;
}
