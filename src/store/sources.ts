/**
 * sources.json: where a workspace's model and images came from, so that `query`, `eval` and `serve`
 * find the model without being told again. Advisory only: the manifest (model sha256, chunking)
 * stays the check that a model fits the index. Written by the writer on close, under the write lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';

export const SOURCES_FILE = 'sources.json';

export interface WorkspaceSources {
  /** Absolute model folder the index was built with. */
  readonly model: string;
  /** Absolute data folder last indexed. */
  readonly data: string;
}

export function readSources(dir: string): WorkspaceSources | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, SOURCES_FILE), 'utf8')) as WorkspaceSources;
  } catch {
    return undefined;
  }
}

/** Atomically, into `root` (the workspace, or the staging directory of a rebuild, which the swap moves in). */
export function writeSources(root: string, sources: WorkspaceSources): void {
  writeFileAtomic(path.join(root, SOURCES_FILE), `${JSON.stringify({ model: sources.model, data: sources.data }, null, 2)}\n`);
}
