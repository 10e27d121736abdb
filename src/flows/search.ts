/**
 * `openIndex` → `Searcher`: queries against a workspace folder or a Postgres store (a postgres://
 * URL). The index opens at once (a missing or empty one is an error right away); the query flow and
 * its model open on the first `search`, so `searchChunks` (eval, straight from stored vectors) never
 * loads a model. Over Postgres the query flow is the same; the chunk top-k runs in the database
 * (exact below EXACT_BELOW_CHUNKS chunks or with `exact`, HNSW above), the ranking here, its default
 * mode bimatch (the learned default and chamfer read the whole chunk matrix, which stays in the
 * database); before each search one probe of the store picks up docs added, removed or moved since.
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
import {
  DocSearch,
  findDuplicates,
  isMatrixIndex,
  LocalChunkIndex,
  PostgresChunkIndex,
  THUMBNAIL_LENGTH,
  type ChunkIndex,
  type Duplicates,
  type RankedHit,
  type Ranking,
  type RankMode,
  type SearchOptions,
} from '../search/index.js';
import { canonicalJson, readSources, Workspace, type ChunkKind } from '../store/index.js';
import type { StoredDoc } from '../store/metadata.js';
import { PostgresStore } from '../store/postgres/index.js';
import { chunkingOf, indexIdentity } from './indexing.js';
import { RunningFlow } from './runner.js';
import { resolveModelDir } from './sources.js';
import { flowFile, loadFlow, type FlowSpec } from './spec.js';

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
  /** Postgres store: exact chunk search whatever its size (default: exact below EXACT_BELOW_CHUNKS chunks, HNSW above). */
  exact?: boolean;
  /** Postgres store: HNSW ef_search (default DEFAULT_EF_SEARCH). */
  efSearch?: number;
}

/** A store given as a URL: a Postgres store. Anything else is a workspace folder. */
export type PostgresUrl = `postgres://${string}` | `postgresql://${string}`;

export function isPostgresUrl(store: string): store is PostgresUrl {
  return /^postgres(ql)?:\/\//i.test(store);
}

/** What a searcher shows of its store's docs (`searcher.workspace`): a Workspace, or a Postgres store's cached doc list. */
export interface IndexedDocs {
  /** The folder, or the URL with its password masked. */
  readonly dir: string;
  readonly dim: number;
  readonly docCount: number;
  readonly chunkCount: number;
  doc(id: number): StoredDoc | undefined;
  docs(): readonly StoredDoc[];
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

export interface Searcher<Docs extends IndexedDocs = IndexedDocs> {
  search(image: string | Uint8Array, opts?: SearchImageOptions): Promise<QueryResult>;
  /**
   * Rank with already-encoded query chunks (rows L2-normalized; `kinds` say which is the
   * whole-image chunk), and the picture's same-photo thumbnail when there is one (`thumbnail()` of
   * the normalized image; an indexed doc's is `storedThumbnail`). Used by eval for leave-one-out
   * straight from the stored vectors.
   */
  searchChunks(vectors: Float32Array, kinds: readonly ChunkKind[], opts?: SearchOptions, thumbnail?: Float32Array): Promise<QueryResult>;
  /** An indexed doc's same-photo thumbnail as the ranking state holds it (undefined on a database store, or when its file could not be read). */
  storedThumbnail(doc: number): Float32Array | undefined;
  /** "More like this": rank with an indexed doc's stored vectors (by id or by its path), itself left out of the results; no encoding. */
  searchDoc(doc: number | string, opts?: Omit<SearchOptions, 'excludeDoc' | 'excludeFrom'>): Promise<QueryResult>;
  /** The doc of an id or of a path (absolute, relative to the cwd, or a file name only one doc has); an InputError when none. */
  findDoc(doc: number | string): StoredDoc;
  /** Groups of near-identical images (whole-image cosine ≥ threshold, default DEFAULT_DUPLICATE_THRESHOLD); local workspaces only. */
  duplicates(threshold?: number): Duplicates;
  /** The mode a search that names none ranks with (the flow's on a workspace; bimatch on a Postgres store). */
  readonly defaultMode: RankMode;
  readonly workspace: Docs;
  close(): Promise<void>;
}

/**
 * Open a workspace folder or a Postgres store (postgres://…) for queries. A URL held in a plain
 * `string` opens the store too, typed as a workspace: narrow it with `isPostgresUrl` first when
 * the store may be either and more than `IndexedDocs` of `searcher.workspace` is read.
 */
export async function openIndex(store: PostgresUrl, opts?: OpenIndexOptions): Promise<Searcher>;
export async function openIndex(workspace: string, opts?: OpenIndexOptions): Promise<Searcher<Workspace>>;
export async function openIndex(store: string, opts: OpenIndexOptions = {}): Promise<Searcher<IndexedDocs>> {
  if (!isPostgresUrl(store)) {
    const workspace = Workspace.openForRead(store);
    return new IndexSearcher(workspace, workspaceAccess(workspace, opts), opts);
  }
  const db = await PostgresStore.openForRead(store);
  try {
    const index = await PostgresChunkIndex.open(db, { exact: opts.exact, efSearch: opts.efSearch });
    return new IndexSearcher(index, postgresAccess(index), opts);
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Executors whose time counts as decoding / encoding in query timings. */
const DECODE_STAGES: unknown[] = [Loader, Normalizer];
const ENCODE_STAGES: unknown[] = [Chunker, Encoder];

/** What a searcher reads of its store beside the docs: the ranking index, the model it was built with, stored chunks and boxes. */
interface StoreAccess {
  readonly index: ChunkIndex;
  /** The model folder recorded with the index, if any. */
  modelDir(): string | undefined;
  /** The chunking recorded with the index (indexIdentity's). */
  chunking(): Record<string, unknown>;
  assertCompatible(identity: ReturnType<typeof indexIdentity>): void;
  /** Before each search: catch up with changes to the store. */
  refresh(): Promise<void>;
  /** A doc's stored chunk vectors (a copy) and their kinds. */
  storedChunks(doc: StoredDoc): Promise<{ vectors: Float32Array; kinds: ChunkKind[] }>;
  /** The doc and best-match box of every hit. */
  lookup(hits: readonly RankedHit[]): Promise<{ doc: StoredDoc; box: Box }[]>;
  close(): Promise<void>;
}

function workspaceAccess(workspace: Workspace, opts: OpenIndexOptions): StoreAccess {
  return {
    index: new LocalChunkIndex(workspace, undefined, { onNotice: opts.onNotice }),
    modelDir: () => readSources(workspace.dir)?.model,
    chunking: () => workspace.manifest.chunking,
    assertCompatible: (identity) => workspace.assertCompatible(identity),
    refresh: () => Promise.resolve(),
    storedChunks: (doc) => {
      const record = workspace.doc(doc.id)!;
      const dim = workspace.dim;
      const whole = workspace.wholeChunkRows()[record.id];
      // A copy: the matrix may be a read-only mapping.
      const vectors = workspace.matrix().slice(record.firstChunk * dim, (record.firstChunk + record.chunkCount) * dim);
      return Promise.resolve({ vectors, kinds: Array.from({ length: record.chunkCount }, (_, i): ChunkKind => (record.firstChunk + i === whole ? 'whole' : 'window')) });
    },
    lookup: (hits) => Promise.resolve(hits.map((hit) => ({ doc: workspace.doc(hit.docId)!, box: workspace.chunk(hit.bestRow).box }))),
    close: () => Promise.resolve(workspace.close()),
  };
}

function postgresAccess(index: PostgresChunkIndex): StoreAccess {
  return {
    index,
    modelDir: () => undefined,
    chunking: () => index.store.identity.chunking,
    assertCompatible: (identity) => index.store.assertCompatible(identity),
    refresh: () => index.refresh(),
    storedChunks: (doc) => index.storedChunks(doc.id),
    lookup: async (hits) => {
      // A doc added after this search's probe can be among the hits: probe again.
      if (hits.some((hit) => !index.doc(hit.docId))) await index.refresh();
      const boxes = await index.chunkBoxes(
        hits.map((hit) => hit.docId),
        hits.map((hit) => hit.bestRow),
      );
      return hits.map((hit, i) => {
        const doc = index.doc(hit.docId);
        if (!doc) throw new Error(`doc ${hit.docId} left the store at ${index.location} during the search`);
        return { doc, box: boxes[i] };
      });
    },
    close: () => index.store.close(),
  };
}

class IndexSearcher<Docs extends IndexedDocs> implements Searcher<Docs> {
  private readonly docSearch: DocSearch;
  private flow?: Promise<RunningFlow>;

  constructor(
    readonly workspace: Docs,
    private readonly access: StoreAccess,
    private readonly opts: OpenIndexOptions,
  ) {
    this.docSearch = new DocSearch(access.index);
  }

  get defaultMode(): RankMode {
    return this.docSearch.defaultMode;
  }

  async search(image: string | Uint8Array, opts: SearchImageOptions = {}): Promise<QueryResult> {
    const flow = await (this.flow ??= this.openFlow());
    const { name, signal, ...query } = opts;
    // The flow's ranker pod names a mode of its own, which a store without the whole matrix may not run.
    if (!isMatrixIndex(this.docSearch.index)) query.mode ??= this.docSearch.defaultMode;
    await this.access.refresh();
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

  async searchChunks(vectors: Float32Array, kinds: readonly ChunkKind[], opts: SearchOptions = {}, thumbnail?: Float32Array): Promise<QueryResult> {
    await this.access.refresh();
    return this.resolve('chunks', await this.docSearch.rank({ vectors, kinds, ...(thumbnail && { thumbnail }) }, opts), 0, 0);
  }

  storedThumbnail(doc: number): Float32Array | undefined {
    const index = this.docSearch.index;
    if (!isMatrixIndex(index)) return undefined;
    const { thumbnails, docShas } = index.rankingState();
    const row = thumbnails.subarray(doc * THUMBNAIL_LENGTH, (doc + 1) * THUMBNAIL_LENGTH);
    return doc >= 0 && doc < docShas.length && row.some((v) => v !== 0) ? row.slice() : undefined;
  }

  async searchDoc(doc: number | string, opts: Omit<SearchOptions, 'excludeDoc' | 'excludeFrom'> = {}): Promise<QueryResult> {
    await this.access.refresh();
    const record = this.findDoc(doc);
    const { vectors, kinds } = await this.access.storedChunks(record);
    const result = await this.searchChunks(vectors, kinds, { ...opts, excludeDoc: record.id, excludeFrom: 'results' }, this.storedThumbnail(record.id));
    return { ...result, query: record.path };
  }

  duplicates(threshold?: number): Duplicates {
    return findDuplicates(this.docSearch.index, kernels, threshold);
  }

  findDoc(doc: number | string): StoredDoc {
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
    if (byName.length === 1) return byName[0];
    throw new InputError(doc, byName.length > 1 ? `names ${byName.length} indexed docs: give the full path or the id` : `not an indexed doc of ${ws.dir}`);
  }

  async close(): Promise<void> {
    const flow = this.flow;
    this.flow = undefined;
    try {
      if (flow) await (await flow.catch(() => undefined))?.close();
    } finally {
      await this.access.close();
    }
  }

  private async resolve(query: string, ranking: Ranking, decode: number, encode: number): Promise<QueryResult> {
    const start = performance.now();
    const found = await this.access.lookup(ranking.hits);
    const results = ranking.hits.map((hit, i): QueryHit => {
      const { doc, box } = found[i];
      return { rank: i + 1, docId: hit.docId, score: hit.score, ...(hit.samePhoto !== undefined && { samePhoto: hit.samePhoto }), path: doc.path, label: doc.label, box };
    });
    return { query, results, timings: { decode, encode, ...ranking.timings, lookup: performance.now() - start } };
  }

  /** Load the model and the query flow, and check both fit the index. */
  private async openFlow(): Promise<RunningFlow> {
    const spec = this.opts.flow ? await loadFlow(flowFile('query', this.opts.flow)) : await shippedQueryFlow(this.access.chunking());
    const modelDir = this.opts.model ?? this.access.modelDir();
    const model = await loadModel(await resolveModelDir(modelDir));
    this.access.assertCompatible(indexIdentity(spec, model));
    const services: BuiltinServices = { mode: 'query', model, search: this.docSearch, encoder: { replicas: this.opts.replicas, batchSize: this.opts.batchSize } };
    return RunningFlow.open(spec, services);
  }
}

/** The shipped query flows, the default first: an index is queried with the one that chunks as its index flow did. */
const SHIPPED_QUERY_FLOWS = ['query', 'query-regions'] as const;

/** The first shipped query flow whose chunking is the index's; else the default, whose mismatch assertCompatible then names. */
async function shippedQueryFlow(chunking: Record<string, unknown>): Promise<FlowSpec> {
  const specs = await Promise.all(SHIPPED_QUERY_FLOWS.map((kind) => loadFlow(flowFile(kind))));
  return specs.find((spec) => canonicalJson(chunkingOf(spec)) === canonicalJson(chunking)) ?? specs[0];
}
