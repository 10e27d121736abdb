/**
 * What an index run takes, reports and records, whichever store it writes: the local run
 * (indexing.ts, a workspace folder) and the Postgres run (fleet.ts, a fleet of workers) share these
 * types, the identity a store records, and the summary they build. A file of its own so that
 * indexing.ts, which hands postgres:// runs to fleet.ts, and fleet.ts import it without a cycle.
 */
import { performance } from 'node:perf_hooks';
import type { DownloadHooks } from '../download/index.js';
import { Chunker } from '../executors/chunker.js';
import { Encoder } from '../executors/encoder.js';
import { Normalizer } from '../executors/normalizer.js';
import type { ModelManifest } from '../model/index.js';
import type { FlowSpec } from './spec.js';

export interface IndexOptions {
  /**
   * Folder of images, walked recursively; a `labels.csv` in it (file,class_id,class_name) labels the
   * docs. Default: the 17 flowers dataset in the cache, downloaded if missing.
   */
  data?: string;
  workspace: string;
  /** Model folder (model.json + .onnx); default: the cached default model, downloaded if missing. */
  model?: string;
  /** Index flow file; default: the shipped flows/index.yml. */
  flow?: string;
  /** Start the index over (the old one stays readable until the new one is complete). */
  rebuild?: boolean;
  /** Keep the docs of files gone from the folder (by default a finished run removes them). */
  keepMissing?: boolean;
  /** Encoder workers, overriding the flow's `replicas`. */
  replicas?: number;
  /** Chunks per encoder batch, overriding the flow's `batch_size`. */
  batchSize?: number;
  onProgress?: (progress: IndexProgress) => void;
  /** Told about the downloads of the default data and model, when they are missing from the cache. */
  download?: DownloadHooks;
}

/** A run's progress; a Postgres run reports the whole fleet's. */
export interface IndexProgress {
  /** Image files found. */
  readonly total: number;
  /** Files handled so far (indexed + unchanged + skipped). */
  readonly done: number;
  readonly indexed: number;
  readonly unchanged: number;
  readonly skipped: number;
  readonly chunks: number;
  readonly elapsedMs: number;
}

export interface IndexSummary {
  /** The workspace folder; for a Postgres run, the store's URL, password masked. */
  readonly workspace: string;
  /** Image files found in the folder. */
  readonly files: number;
  /** Docs added by this run. */
  readonly indexed: number;
  /** Chunks added by this run. */
  readonly chunks: number;
  /** Files already in the index (same content), moved ones included. */
  readonly unchanged: number;
  /** Files that could not be indexed, with the reason (broken symbolic links and link loops of the folder too). */
  readonly skipped: readonly { file: string; reason: string }[];
  /** Indexed content found under another path now (moved or renamed): the doc's path was updated from `from` to `to`. */
  readonly moved: readonly { from: string; to: string }[];
  /** Docs removed because their content is gone from the folder (none with keepMissing); they never come up in results again. */
  readonly removed: readonly { file: string; sha256: string }[];
  readonly seconds: number;
  /** Docs added per second of this run. */
  readonly imagesPerSecond: number;
  /** The whole index after this run. */
  readonly total: { readonly docs: number; readonly chunks: number };
  /** Milliseconds each pod spent processing, summed over docs (pods overlap, so these add up to more than `seconds`). */
  readonly podTime: Readonly<Record<string, number>>;
}

/** What a finished run counted, as either store reports its moves and removals. */
export interface IndexRunCounts extends Omit<IndexSummary, 'seconds' | 'imagesPerSecond' | 'moved' | 'removed'> {
  readonly moved: readonly { readonly from: string; readonly to: string }[];
  readonly removed: readonly { readonly path: string; readonly sha256: string }[];
}

/** The summary of a run that began at `started` (performance.now()) and ends now. */
export function indexSummary(started: number, run: IndexRunCounts): IndexSummary {
  const seconds = (performance.now() - started) / 1000;
  return {
    workspace: run.workspace,
    files: run.files,
    indexed: run.indexed,
    chunks: run.chunks,
    unchanged: run.unchanged,
    skipped: run.skipped,
    seconds,
    imagesPerSecond: run.indexed / seconds,
    total: run.total,
    podTime: run.podTime,
    moved: run.moved.map(({ from, to }) => ({ from, to })),
    removed: run.removed.map(({ path: file, sha256 }) => ({ file, sha256 })),
  };
}

/** What a store records of the model and chunking it was built with, and checks at query time. */
export function indexIdentity(spec: FlowSpec, model: ModelManifest): { model: { name: string; sha256: string; dim: number }; chunking: Record<string, unknown> } {
  return { model: { name: model.name, sha256: model.sha256, dim: model.embedding.dim }, chunking: chunkingOf(spec) };
}

/** The parameters that decide what a chunk is; recorded in the workspace manifest, checked at query time. */
export function chunkingOf(spec: FlowSpec): Record<string, unknown> {
  const normalizer = spec.pods.find((pod) => pod.executor === (Normalizer as unknown));
  const chunker = spec.pods.find((pod) => pod.executor === (Chunker as unknown));
  const encoder = spec.pods.find((pod) => pod.executor === (Encoder as unknown));
  return {
    ...(normalizer && { shorter_side: normalizer.params.shorter_side }),
    ...(chunker && { window: chunker.params.window, stride: chunker.params.stride, whole: chunker.params.whole }),
    // Region-pooled window vectors are not crop vectors; recorded only then, so crop indexes keep their manifest.
    ...(encoder?.params.pooling === 'regions' && { pooling: 'regions', gem_p: encoder.params.gem_p, ...(encoder.params.whole_chunk === 'pooled' && { whole_chunk: 'pooled' }) }),
  };
}
