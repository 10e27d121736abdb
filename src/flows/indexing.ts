/**
 * `indexImages`: walk a folder, run every image through the index flow, commit the finished docs
 * to the workspace in groups (each group one atomic commit, so a kill loses at most the docs of
 * the group in progress), and report what happened to every file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { listImages, readLabelsCsv } from '../dataset/index.js';
import { InputError } from '../errors.js';
import type { BuiltinServices } from '../executors/services.js';
import { loadModel } from '../model/index.js';
import { refreshRankingState, type PhotoThumbnails } from '../search/index.js';
import { Workspace, type ListedFile, type NewDoc, type WorkspaceChanges } from '../store/index.js';
import { indexImagesIntoPostgres, isPostgresUrl } from './fleet.js';
import { indexIdentity, indexSummary, type IndexOptions, type IndexSummary } from './index-run.js';
import { RunningFlow } from './runner.js';
import { resolveDataDir, resolveModelDir } from './sources.js';
import { flowFile, loadFlow } from './spec.js';

export { chunkingOf, indexIdentity, type IndexOptions, type IndexProgress, type IndexSummary } from './index-run.js';

/** Commit after this many finished docs, or this long after the previous commit. */
const COMMIT_DOCS = 32;
const COMMIT_MS = 2000;

export async function indexImages(opts: IndexOptions): Promise<IndexSummary> {
  if ('store' in opts && isPostgresUrl(opts.store)) return indexImagesIntoPostgres({ ...opts, store: opts.store });
  const started = performance.now();
  const workspaceDir = path.resolve(opts.workspace);
  // Each folder is resolved here once; the model's is recorded in sources.json.
  const dataDir = await resolveDataDir(opts.data, opts.download);
  // A text file of image URLs is read only by the Postgres flow (its workers download them).
  if (fs.statSync(dataDir, { throwIfNoEntry: false })?.isFile()) {
    throw new InputError(dataDir, 'is a file, not a folder of images: a workspace indexes a folder; a text file of image URLs is indexed only into a Postgres store (--store postgres://user@host/db)');
  }
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
    indexed: workspace,
    keepsThumbnails: true,
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
  const thumbnails = new Map<string, PhotoThumbnails>();
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
        else {
          pending.push(doc.entry as NewDoc);
          if (doc.sha256 && doc.thumbnails) thumbnails.set(doc.sha256, doc.thumbnails);
        }
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
  await refreshRankingState(workspaceDir, { refit: opts.rebuild, thumbnails });
  return indexSummary(started, {
    workspace: workspaceDir,
    files: files.length,
    indexed,
    chunks,
    unchanged,
    skipped: [...unwalkable, ...skipped],
    total,
    podTime: Object.fromEntries(flow.podTime),
    moved: changes.moved,
    removed: changes.removed,
  });
}
