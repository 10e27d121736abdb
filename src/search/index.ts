/** The search layer: ranking modes behind one `Ranker` interface, over any `ChunkIndex`. */
export { DocSearch } from './doc-search.js';
export { LocalChunkIndex, refreshRankingState, type LocalChunkIndexOptions } from './local-index.js';
export { DEFAULT_EF_SEARCH, EXACT_BELOW_CHUNKS, PostgresChunkIndex, type PostgresChunkIndexOptions } from './postgres-index.js';
export { EXPANDED_PARAMS, REFIT_FRACTION } from './expansion.js';
export { RANKERS } from './rankers/index.js';
export { photoThumbnails, THUMBNAIL_LENGTH, THUMBNAIL_SIDE, thumbnail, type PhotoThumbnails } from './thumbnail.js';
export * from './types.js';
export { DEFAULT_DUPLICATE_THRESHOLD, findDuplicates, type DuplicatePair, type Duplicates } from './duplicates.js';
