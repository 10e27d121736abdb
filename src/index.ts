/**
 * flower-native: image similarity search. Index a folder of images into a workspace, then query
 * it with images; both run YAML flows of executors (see flows/ and the README).
 *
 *   const summary = await indexImages({ data: 'photos/', workspace: 'ws/', model: 'model/' });
 *   const searcher = await openIndex('ws/');
 *   const { results } = await searcher.search('query.jpg', { top: 10 });
 *   await searcher.close();
 */
export { FlowerError, InputError, SkipDoc, FlowError, NoIndexError, IncompatibleIndexError, IndexLockedError, NoNetworkError, ChecksumError, StoreUnavailableError, type ErrorCode } from './errors.js';
export { findImages, listImages, type ImageListing } from './dataset/index.js';
export { indexImages, chunkingOf, type IndexOptions, type IndexProgress, type IndexSummary } from './flows/indexing.js';
export { openIndex, type OpenIndexOptions, type QueryHit, type QueryResult, type Searcher, type SearchImageOptions } from './flows/search.js';
export {
  DocSearch,
  LocalChunkIndex,
  RANKERS,
  RANK_MODES,
  DEFAULT_TOP,
  DEFAULT_CHUNK_K,
  DEFAULT_RANK_MODE,
  type ChunkIndex,
  type QueryChunks,
  type RankedHit,
  type Ranker,
  type RankMode,
  type Ranking,
  type RankRequest,
  type SearchOptions,
} from './search/index.js';
export { loadFlow, parseFlow, flowFile, builtinFlowsDir, type FlowSpec, type PodSpec } from './flows/spec.js';
export { RunningFlow, type FlowOutcome } from './flows/runner.js';
export { readSources, type WorkspaceSources } from './store/index.js';
export { builtinExecutors } from './executors/builtin.js';
export { type Executor, type ExecutorClass, type ExecutorContext, type FlowChunk, type FlowDoc, type FlowImage, type FlowServices, type ParamSpec } from './executors/types.js';
export { kernels, kernelInfo, slidingWindows, D_MISS, type Box, type KernelInfo, type Kernels, type Normalization, type RawImage } from './kernels/index.js';
export { IMAGE_EXTENSIONS, type DecodedImage } from './image/index.js';
export { loadModel, type LoadedModel, type ModelManifest } from './model/index.js';
export { Workspace, type ChunkRecord, type DocRecord, type NewDoc, type WorkspaceManifest } from './store/index.js';
