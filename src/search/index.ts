/** The search layer: ranking modes behind one `Ranker` interface, over any `ChunkIndex`. */
export { DocSearch } from './doc-search.js';
export { LocalChunkIndex } from './local-index.js';
export { RANKERS } from './rankers/index.js';
export * from './types.js';
