/**
 * Where a workspace's model and images came from, kept beside the index (`sources.json`) so that
 * `query`, `eval` and `serve` find the model without being told again. Advisory only: the store's
 * manifest (model sha256, chunking) stays the check that the model fits the index.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureDataset, ensureModel, type DownloadHooks } from '../download/index.js';

export const SOURCES_FILE = 'sources.json';

export interface WorkspaceSources {
  /** Absolute model folder the index was built with. */
  readonly model: string;
  /** Absolute data folder last indexed. */
  readonly data: string;
}

export function writeSources(workspace: string, sources: WorkspaceSources): void {
  const file = path.join(workspace, SOURCES_FILE);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(sources, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

export function readSources(workspace: string): WorkspaceSources | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(workspace, SOURCES_FILE), 'utf8')) as WorkspaceSources;
  } catch {
    return undefined;
  }
}

/** The model folder to use: the one given, else the cached default model (downloaded when missing). */
export async function resolveModelDir(dir?: string, hooks: DownloadHooks = {}): Promise<string> {
  return dir !== undefined ? path.resolve(dir) : ensureModel(undefined, hooks);
}

/** The data folder to index: the one given, else the cached 17 flowers dataset (downloaded when missing). */
export async function resolveDataDir(dir?: string, hooks: DownloadHooks = {}): Promise<string> {
  return dir !== undefined ? path.resolve(dir) : ensureDataset(hooks);
}
