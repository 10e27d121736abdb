/** The executors a flow file can name without a path. */
import { Chunker } from './chunker.js';
import { Encoder } from './encoder.js';
import { ChunkIndexer, DocIndexer, Join } from './indexers.js';
import { Loader } from './loader.js';
import { Normalizer } from './normalizer.js';
import { RankerExecutor } from './ranker.js';
import type { ExecutorClass } from './types.js';

export const builtinExecutors: Readonly<Record<string, ExecutorClass>> = {
  loader: Loader,
  normalizer: Normalizer,
  chunker: Chunker,
  encoder: Encoder,
  chunk_indexer: ChunkIndexer,
  doc_indexer: DocIndexer,
  ranker: RankerExecutor,
  join: Join,
};
