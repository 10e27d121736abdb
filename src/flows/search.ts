/**
 * `openIndex` → `Searcher`: queries against a workspace. The index opens at once (a missing or
 * empty one is an error right away); the query flow and its model open on the first `search`,
 * so `searchChunks` (eval, straight from stored vectors) never loads a model.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Chunker } from '../executors/chunker.js';
import { Encoder } from '../executors/encoder.js';
import { Loader } from '../executors/loader.js';
import { Normalizer } from '../executors/normalizer.js';
import type { BuiltinServices } from '../executors/services.js';
import { InputError } from '../errors.js';
import type { Box } from '../kernels/index.js';
import { loadModel } from '../model/index.js';
import { DocSearch, LocalChunkIndex, type Ranking, type SearchOptions } from '../search/index.js';
import { readSources, Workspace, type ChunkKind } from '../store/index.js';
import { indexIdentity } from './indexing.js';
import { RunningFlow } from './runner.js';
import { resolveModelDir } from './sources.js';
import { flowFile, loadFlow } from './spec.js';

export interface OpenIndexOptions {
  /** Model folder; default: the one the index was built with (sources.json), else the cached default model. */
  model?: string;
  /** Query flow file; default: the shipped flows/query.yml. */
  flow?: string;
  /** Encoder workers, overriding the flow's `replicas`. */
  replicas?: number;
  batchSize?: number;
}

export interface QueryHit {
  /** 1-based. */
  readonly rank: number;
  readonly docId: number;
  /** bimatch: BiMatch score in [0, 1] (1 = every chunk of both images has an identical match); whole: cosine in [-1, 1]. */
  readonly score: number;
  readonly path: string;
  readonly label: string | null;
  /** Where in the doc's image (source pixels) its best-matching chunk lies. */
  readonly box: Box;
}

export interface QueryResult {
  /** The query image's path, or its name for in-memory bytes. */
  readonly query: string;
  readonly results: QueryHit[];
  /** Milliseconds per stage. */
  readonly timings: { decode: number; encode: number; topk: number; rank: number; lookup: number };
}

export interface SearchImageOptions extends Omit<SearchOptions, 'excludeDoc' | 'chunkK'> {
  /** Name reported for in-memory images (default "query"). */
  name?: string;
  /** Stops the search between stages (decode, chunk, encode, rank) once aborted, e.g. by a timeout. */
  signal?: AbortSignal;
}

export interface Searcher {
  search(image: string | Uint8Array, opts?: SearchImageOptions): Promise<QueryResult>;
  /**
   * Rank with already-encoded query chunks (rows L2-normalized; `kinds` say which is the
   * whole-image chunk). Used by eval for leave-one-out straight from the stored vectors.
   */
  searchChunks(vectors: Float32Array, kinds: readonly ChunkKind[], opts?: SearchOptions): Promise<QueryResult>;
  readonly workspace: Workspace;
  close(): Promise<void>;
}

export async function openIndex(workspace: string, opts: OpenIndexOptions = {}): Promise<Searcher> {
  return new IndexSearcher(Workspace.openForRead(workspace), opts);
}

/** Executors whose time counts as decoding / encoding in query timings. */
const DECODE_STAGES: unknown[] = [Loader, Normalizer];
const ENCODE_STAGES: unknown[] = [Chunker, Encoder];

class IndexSearcher implements Searcher {
  private readonly docSearch: DocSearch;
  private flow?: Promise<RunningFlow>;

  constructor(
    readonly workspace: Workspace,
    private readonly opts: OpenIndexOptions,
  ) {
    this.docSearch = new DocSearch(new LocalChunkIndex(workspace));
  }

  async search(image: string | Uint8Array, opts: SearchImageOptions = {}): Promise<QueryResult> {
    const flow = await (this.flow ??= this.openFlow());
    const { name, signal, ...query } = opts;
    const uri = typeof image === 'string' ? path.resolve(image) : (name ?? 'query');
    const outcome = await flow.run({ uri, bytes: typeof image === 'string' ? undefined : image, query, signal });
    if (outcome.skipped) {
      const { cause } = outcome.skipped;
      throw new InputError(typeof image === 'string' ? image : uri, outcome.skipped.reason, cause instanceof InputError ? cause.code : 'invalid_input');
    }
    const ranking = outcome.doc.ranking;
    if (!ranking) throw new Error(`${flow.spec.file}: the query flow has no ranker pod`);
    const stage = (stages: unknown[]) => flow.spec.pods.filter((pod) => stages.includes(pod.executor)).reduce((sum, pod) => sum + (outcome.podTime.get(pod.name) ?? 0), 0);
    return this.resolve(typeof image === 'string' ? image : uri, ranking, stage(DECODE_STAGES), stage(ENCODE_STAGES));
  }

  async searchChunks(vectors: Float32Array, kinds: readonly ChunkKind[], opts: SearchOptions = {}): Promise<QueryResult> {
    return this.resolve('chunks', await this.docSearch.rank({ vectors, kinds }, opts), 0, 0);
  }

  async close(): Promise<void> {
    const flow = this.flow;
    this.flow = undefined;
    try {
      if (flow) await (await flow.catch(() => undefined))?.close();
    } finally {
      this.workspace.close();
    }
  }

  private resolve(query: string, ranking: Ranking, decode: number, encode: number): QueryResult {
    const start = performance.now();
    const results = ranking.hits.map((hit, i): QueryHit => {
      const doc = this.workspace.doc(hit.docId)!;
      return { rank: i + 1, docId: hit.docId, score: hit.score, path: doc.path, label: doc.label, box: this.workspace.chunk(hit.bestRow).box };
    });
    return { query, results, timings: { decode, encode, ...ranking.timings, lookup: performance.now() - start } };
  }

  /** Load the model and the query flow, and check both fit the index. */
  private async openFlow(): Promise<RunningFlow> {
    const spec = await loadFlow(flowFile('query', this.opts.flow));
    const modelDir = this.opts.model ?? readSources(this.workspace.dir)?.model;
    const model = await loadModel(await resolveModelDir(modelDir));
    this.workspace.assertCompatible(indexIdentity(spec, model));
    const services: BuiltinServices = { mode: 'query', model, search: this.docSearch, encoder: { replicas: this.opts.replicas, batchSize: this.opts.batchSize } };
    return RunningFlow.open(spec, services);
  }
}

