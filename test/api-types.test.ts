/**
 * The public API's types, pinned: `tsc -p .` fails on this file when index.d.ts changes in a way that breaks
 * callers. Imported by the package's own name, so the types checked are the ones its `exports` hand a user
 * (while building, tsc maps dist/src/*.d.ts back to src/, so a clean checkout compiles too).
 *
 * Each check runs in the direction a caller depends on: a result must still offer what callers read (it
 * extends the pinned shape; new fields are fine), and options must still accept what callers pass (the pinned
 * options extend the real ones, so no new required option, and no pinned key is gone). A deliberate breaking
 * change edits the pinned shapes here, in the same commit.
 * The ranking types (Ranker, RankMode, SearchOptions) are not pinned here while they move into src/search/.
 */
import test from 'ava';
import { expectTypeOf } from 'expect-type';
import type { FastifyInstance } from 'fastify';
import * as api from 'flower-native';
import {
  ChecksumError,
  FlowError,
  FlowerError,
  IncompatibleIndexError,
  IndexLockedError,
  indexImages,
  InputError,
  NoIndexError,
  NoNetworkError,
  openIndex,
  SkipDoc,
  StoreUnavailableError,
  type ErrorCode,
  type IndexOptions,
  type IndexSummary,
  type OpenIndexOptions,
  type QueryHit,
  type QueryResult,
  type Searcher,
} from 'flower-native';
import { createServer, DEFAULT_HOST, DEFAULT_LIMITS, DEFAULT_PORT, serve, type RunningServer, type ServeOptions, type ServerLimits } from 'flower-native/server';

interface PinnedBox {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

interface PinnedIndexProgress {
  readonly total: number;
  readonly done: number;
  readonly indexed: number;
  readonly unchanged: number;
  readonly skipped: number;
  readonly chunks: number;
  readonly elapsedMs: number;
}

interface PinnedIndexOptions {
  data: string;
  workspace: string;
  model?: string;
  flow?: string;
  rebuild?: boolean;
  replicas?: number;
  batchSize?: number;
  onProgress?: (progress: PinnedIndexProgress) => void;
}

interface PinnedIndexSummary {
  readonly workspace: string;
  readonly files: number;
  readonly indexed: number;
  readonly chunks: number;
  readonly unchanged: number;
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly total: { readonly docs: number; readonly chunks: number };
  readonly podTime: Readonly<Record<string, number>>;
}

interface PinnedOpenIndexOptions {
  model?: string;
  flow?: string;
  replicas?: number;
  batchSize?: number;
}

interface PinnedQueryHit {
  readonly rank: number;
  readonly docId: number;
  readonly score: number;
  readonly path: string;
  readonly label: string | null;
  readonly box: PinnedBox;
}

interface PinnedQueryResult {
  readonly query: string;
  readonly results: readonly PinnedQueryHit[];
  readonly timings: { readonly decode: number; readonly encode: number; readonly topk: number; readonly rank: number; readonly lookup: number };
}

interface PinnedServeOptions {
  workspace: string;
  port?: number;
  host?: string;
  log?: boolean;
  model?: string;
  flow?: string;
  replicas?: number;
  maxUploadBytes?: number;
  maxPixels?: number;
  maxConcurrent?: number;
  maxWaiting?: number;
  searchTimeoutMs?: number;
  requestTimeoutMs?: number;
}

interface PinnedServerLimits {
  readonly maxUploadBytes: number;
  readonly maxPixels: number;
  readonly maxConcurrent: number;
  readonly maxWaiting: number;
  readonly searchTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** The codes of the domain errors; the CLI's exit codes and the server's statuses are keyed by them. */
type PinnedDomainCode = 'invalid_input' | 'skipped' | 'invalid_flow' | 'no_index' | 'incompatible_index' | 'index_locked' | 'no_network' | 'checksum_mismatch' | 'store_unavailable';

test('indexing and search: signatures, options and result shapes', (t) => {
  expectTypeOf(indexImages).toExtend<(options: PinnedIndexOptions) => Promise<PinnedIndexSummary>>();
  expectTypeOf<keyof PinnedIndexOptions>().toExtend<keyof IndexOptions>();
  expectTypeOf<IndexSummary>().toExtend<PinnedIndexSummary>();

  expectTypeOf(openIndex).toExtend<(workspace: string, options?: PinnedOpenIndexOptions) => Promise<Searcher>>();
  expectTypeOf<keyof PinnedOpenIndexOptions>().toExtend<keyof OpenIndexOptions>();

  expectTypeOf<Searcher['search']>().toExtend<(image: string | Uint8Array, options?: { top?: number; minScore?: number; name?: string }) => Promise<PinnedQueryResult>>();
  expectTypeOf<Searcher['searchChunks']>().parameter(0).toEqualTypeOf<Float32Array>();
  expectTypeOf<Searcher['searchChunks']>().returns.resolves.toExtend<PinnedQueryResult>();
  expectTypeOf<Searcher['close']>().toEqualTypeOf<() => Promise<void>>();
  expectTypeOf<Searcher['workspace']>().toExtend<{ readonly dir: string; readonly docCount: number; readonly chunkCount: number }>();
  expectTypeOf<QueryResult>().toExtend<PinnedQueryResult>();
  expectTypeOf<QueryHit>().toExtend<PinnedQueryHit>();

  expectTypeOf(api).not.toHaveProperty('createServer'); // the main entry stays free of fastify
  t.is(typeof api.indexImages, 'function');
});

test('server: serve, createServer and the limits', (t) => {
  expectTypeOf(serve).toExtend<(options: PinnedServeOptions) => Promise<RunningServer>>();
  expectTypeOf<keyof PinnedServeOptions>().toExtend<keyof ServeOptions>();
  expectTypeOf<RunningServer>().toExtend<{ readonly url: string; readonly searcher: Searcher; readonly app: FastifyInstance; close(): Promise<void> }>();
  // What openIndex() returns is what createServer() serves.
  expectTypeOf(createServer).toExtend<(options: { searcher: Searcher; logger?: boolean }) => Promise<FastifyInstance>>();
  expectTypeOf(DEFAULT_HOST).toEqualTypeOf<string>();
  expectTypeOf(DEFAULT_PORT).toEqualTypeOf<number>();
  expectTypeOf(DEFAULT_LIMITS).toEqualTypeOf<ServerLimits>();
  expectTypeOf<ServerLimits>().toExtend<PinnedServerLimits>();
  t.is(typeof createServer, 'function');
});

test('errors: one base class with a stable code, and the fields of each subclass', (t) => {
  expectTypeOf<FlowerError>().toExtend<Error>();
  expectTypeOf<FlowerError['code']>().toEqualTypeOf<ErrorCode>();
  expectTypeOf<PinnedDomainCode>().toExtend<ErrorCode>();
  expectTypeOf(FlowerError).toBeConstructibleWith('no_index', 'message');
  // Callers construct these two (an executor throws SkipDoc to drop a document).
  expectTypeOf(InputError).toBeConstructibleWith('a.jpg', 'unreadable');
  expectTypeOf(SkipDoc).toBeConstructibleWith('a.jpg', 'already indexed', true);
  expectTypeOf<InputError>().toExtend<FlowerError & { readonly file: string; readonly reason: string }>();
  expectTypeOf<SkipDoc>().toExtend<FlowerError & { readonly file: string; readonly reason: string; readonly expected: boolean }>();
  expectTypeOf<FlowError>().toExtend<FlowerError & { readonly file: string; readonly line: number | undefined; readonly problem: string }>();
  expectTypeOf<NoIndexError>().toExtend<FlowerError & { readonly dir: string }>();
  expectTypeOf<IncompatibleIndexError>().toExtend<FlowerError & { readonly dir: string; readonly differences: readonly string[] }>();
  expectTypeOf<IndexLockedError>().toExtend<FlowerError & { readonly dir: string }>();
  expectTypeOf<NoNetworkError>().toExtend<FlowerError & { readonly url: string; readonly reason: string }>();
  expectTypeOf<ChecksumError>().toExtend<FlowerError & { readonly url: string; readonly expected: string; readonly actual: string }>();
  expectTypeOf<StoreUnavailableError>().toExtend<FlowerError & { readonly store: string }>();

  // The same promises at run time: every domain error is a FlowerError with its code and its class's name.
  const codes: [FlowerError, PinnedDomainCode][] = [
    [new InputError('a.jpg', 'unreadable'), 'invalid_input'],
    [new SkipDoc('a.jpg', 'already indexed', true), 'skipped'],
    [new FlowError('flow.yml', 3, 'unknown pod'), 'invalid_flow'],
    [new NoIndexError('ws', 'no index'), 'no_index'],
    [new IncompatibleIndexError('ws', ['model']), 'incompatible_index'],
    [new IndexLockedError('ws', 'locked'), 'index_locked'],
    [new NoNetworkError('https://example.invalid', 'ENOTFOUND', 'check the network'), 'no_network'],
    [new ChecksumError('https://example.invalid', 'aa', 'bb'), 'checksum_mismatch'],
    [new StoreUnavailableError('postgres', 'refused'), 'store_unavailable'],
  ];
  for (const [error, code] of codes) {
    t.true(error instanceof FlowerError && error instanceof Error, error.name);
    t.is(error.code, code, error.name);
    t.is(error.name, error.constructor.name);
  }
});
