/**
 * `indexImages`: walk a folder, run every image through the index flow, commit the finished docs
 * to the workspace in groups (each group one atomic commit, so a kill loses at most the docs of
 * the group in progress), and report what happened to every file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { listImages, readLabelsCsv } from '../dataset/index.js';
import type { DownloadHooks } from '../download/index.js';
import { Chunker } from '../executors/chunker.js';
import { Normalizer } from '../executors/normalizer.js';
import type { BuiltinServices } from '../executors/services.js';
import { loadModel, type ModelManifest } from '../model/index.js';
import { refreshRankingState } from '../search/index.js';
import { Workspace, type ListedFile, type NewDoc, type WorkspaceChanges } from '../store/index.js';
import { indexImagesIntoPostgres, isPostgresUrl } from './fleet.js';
import { RunningFlow } from './runner.js';
import { resolveDataDir, resolveModelDir } from './sources.js';
import { flowFile, loadFlow, type FlowSpec } from './spec.js';

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

/** Commit after this many finished docs, or this long after the previous commit. */
const COMMIT_DOCS = 32;
const COMMIT_MS = 2000;

export async function indexImages(opts: IndexOptions): Promise<IndexSummary> {
  if ('store' in opts && isPostgresUrl(opts.store)) return indexImagesIntoPostgres({ ...opts, store: opts.store, identity: indexIdentity });
  const started = performance.now();
  const workspaceDir = path.resolve(opts.workspace);
  // Each folder is resolved here once; the model's is recorded in sources.json.
  const dataDir = await resolveDataDir(opts.data, opts.download);
  const { files, skipped: unwalkable } = await listImages(dataDir, workspaceDir);
  const spec = await loadFlow(flowFile('index', opts.flow));
  const modelDir = await resolveModelDir(opts.model, opts.download);
  const model = await loadModel(modelDir);
  const labelsFile = path.join(dataDir, 'labels.csv');
  const labels = fs.existsSync(labelsFile) ? readLabelsCsv(labelsFile) : undefined;
  const workspace = Workspace.openForWrite(workspaceDir, { ...indexIdentity(spec, model), rebuild: opts.rebuild, sources: { model: modelDir, data: dataDir } });
  const services: BuiltinServices = {
    mode: 'index',
    model,
    workspace,
    labels,
    encoder: { replicas: opts.replicas, batchSize: opts.batchSize },
  };

  let indexed = 0;
  let chunks = 0;
  let unchanged = 0;
  const skipped: { file: string; reason: string }[] = [];
  // What the folder holds now, by content, for moves and removals: files the loader hashed, and those it could not read.
  const listing: ListedFile[] = [];
  const unreadable: string[] = [];
  let pending: NewDoc[] = [];
  let lastCommit = performance.now();
  const commit = () => {
    const added = workspace.addDocs(pending);
    indexed += added.length;
    chunks += added.reduce((sum, doc) => sum + doc.chunkCount, 0);
    pending = [];
    lastCommit = performance.now();
  };

  let flow: RunningFlow | undefined;
  let total = { docs: 0, chunks: 0 };
  let changes: WorkspaceChanges = { moved: [], removed: [] };
  let finished = false;
  try {
    flow = await RunningFlow.open(spec, services);
    await flow.runAll(
      files.map((file) => ({ uri: file })),
      ({ doc, skipped: skip }) => {
        if (doc.sha256) listing.push({ path: doc.uri, sha256: doc.sha256 });
        else unreadable.push(doc.uri);
        if (skip?.expected) unchanged++;
        else if (skip) skipped.push({ file: skip.file, reason: skip.reason });
        else pending.push(doc.entry as NewDoc);
        if (pending.length >= COMMIT_DOCS || (pending.length > 0 && performance.now() - lastCommit >= COMMIT_MS)) commit();
        opts.onProgress?.({
          total: files.length,
          done: indexed + pending.length + unchanged + skipped.length,
          indexed: indexed + pending.length,
          unchanged,
          skipped: skipped.length,
          chunks: chunks + pending.reduce((sum, entry) => sum + entry.chunks.length, 0),
          elapsedMs: performance.now() - started,
        });
      },
    );
    commit();
    // Only a run that saw the whole folder knows what is gone from it.
    changes = workspace.reconcile(listing, { keepMissing: opts.keepMissing, under: dataDir, unreadable });
    finished = true;
  } finally {
    try {
      await flow?.close();
    } finally {
      total = { docs: workspace.docCount, chunks: workspace.chunkCount };
      // A failed run keeps its commits, but a failed rebuild must not replace the old index.
      if (finished) workspace.close();
      else workspace.abort();
    }
  }
  refreshRankingState(workspaceDir, { refit: opts.rebuild });
  const seconds = (performance.now() - started) / 1000;
  return {
    workspace: workspaceDir,
    files: files.length,
    indexed,
    chunks,
    unchanged,
    skipped: [...unwalkable, ...skipped],
    seconds,
    imagesPerSecond: indexed / seconds,
    total,
    podTime: Object.fromEntries(flow.podTime),
    moved: changes.moved.map(({ from, to }) => ({ from, to })),
    removed: changes.removed.map(({ path: file, sha256 }) => ({ file, sha256 })),
  };
}

/** What a workspace records of the model and chunking it was built with, and checks at query time. */
export function indexIdentity(spec: FlowSpec, model: ModelManifest): { model: { name: string; sha256: string; dim: number }; chunking: Record<string, unknown> } {
  return { model: { name: model.name, sha256: model.sha256, dim: model.embedding.dim }, chunking: chunkingOf(spec) };
}

/** The parameters that decide what a chunk is; recorded in the workspace manifest, checked at query time. */
export function chunkingOf(spec: FlowSpec): Record<string, unknown> {
  const normalizer = spec.pods.find((pod) => pod.executor === (Normalizer as unknown));
  const chunker = spec.pods.find((pod) => pod.executor === (Chunker as unknown));
  return {
    ...(normalizer && { shorter_side: normalizer.params.shorter_side }),
    ...(chunker && { window: chunker.params.window, stride: chunker.params.stride, whole: chunker.params.whole }),
  };
}
