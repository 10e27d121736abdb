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
import { kernels } from '../kernels/index.js';
import { DocSearch, findDuplicates, LocalChunkIndex, type Duplicates, type Ranking, type SearchOptions } from '../search/index.js';
import { readSources, Workspace, type ChunkKind, type DocRecord } from '../store/index.js';
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
  /** Told once when the index's stored ranking state cannot be used and is learned in memory on first use. */
  onNotice?: (message: string) => void;
}

export interface QueryHit {
  /** 1-based. */
  readonly rank: number;
  readonly docId: number;
  /**
   * expanded (default): the cosine of the expanded doc vectors in [-1, 1] (shown as a match %:
   * ≥ 0.8 strong, 0.5–0.8 similar, < 0.3 unrelated); bimatch: BiMatch score in [0, 1] (1 = every
   * chunk of both images has an identical match); whole: cosine in [-1, 1]; chamfer: mean best cosine.
   */
  readonly score: number;
  /** expanded only: this doc was taken for the same photo (an edited copy), with this instance cosine; it is listed first. */
  readonly samePhoto?: number;
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
  /** "More like this": rank with an indexed doc's stored vectors (by id or by its path), itself left out of the results; no encoding. */
  searchDoc(doc: number | string, opts?: Omit<SearchOptions, 'excludeDoc' | 'excludeFrom'>): Promise<QueryResult>;
  /** The doc of an id or of a path (absolute, relative to the cwd, or a file name only one doc has); an InputError when none. */
  findDoc(doc: number | string): DocRecord;
  /** Groups of near-identical images (whole-image cosine ≥ threshold, default DEFAULT_DUPLICATE_THRESHOLD). */
  duplicates(threshold?: number): Duplicates;
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
    this.docSearch = new DocSearch(new LocalChunkIndex(workspace, undefined, { onNotice: opts.onNotice }));
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

  async searchDoc(doc: number | string, opts: Omit<SearchOptions, 'excludeDoc' | 'excludeFrom'> = {}): Promise<QueryResult> {
    const record = this.findDoc(doc);
    const { vectors, kinds } = this.storedChunks(record);
    const result = await this.searchChunks(vectors, kinds, { ...opts, excludeDoc: record.id, excludeFrom: 'results' });
    return { ...result, query: record.path };
  }

  duplicates(threshold?: number): Duplicates {
    return findDuplicates(this.docSearch.index, kernels, threshold);
  }

  findDoc(doc: number | string): DocRecord {
    const ws = this.workspace;
    if (typeof doc === 'number' || /^\d+$/.test(doc)) {
      const found = ws.doc(Number(doc));
      if (!found) throw new InputError(String(doc), `no such doc in ${ws.dir} (ids 0..${ws.docCount - 1})`);
      return found;
    }
    const docs = ws.docs();
    const exact = docs.find((d) => d.path === doc || d.path === path.resolve(doc));
    const byName = docs.filter((d) => path.basename(d.path) === doc);
    if (exact) return exact;
    if (byName.length === 1) return byName[0]!;
    throw new InputError(doc, byName.length > 1 ? `names ${byName.length} indexed docs: give the full path or the id` : `not an indexed doc of ${ws.dir}`);
  }

  /** A doc's stored chunk vectors (a copy: the matrix may be a read-only mapping) and their kinds. */
  private storedChunks(record: DocRecord): { vectors: Float32Array; kinds: ChunkKind[] } {
    const dim = this.workspace.dim;
    const whole = this.workspace.wholeChunkRows()[record.id];
    const vectors = this.workspace.matrix().slice(record.firstChunk * dim, (record.firstChunk + record.chunkCount) * dim);
    return { vectors, kinds: Array.from({ length: record.chunkCount }, (_, i) => (record.firstChunk + i === whole ? 'whole' : 'window')) };
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
      return { rank: i + 1, docId: hit.docId, score: hit.score, ...(hit.samePhoto !== undefined && { samePhoto: hit.samePhoto }), path: doc.path, label: doc.label, box: this.workspace.chunk(hit.bestRow).box };
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

