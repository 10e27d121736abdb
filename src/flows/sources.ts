/** The model and data folders a run uses: the ones given, else the cached defaults (downloaded when missing). */
import path from 'node:path';
import { ensureDataset, ensureModel, type DownloadHooks } from '../download/index.js';

// The store writes and reads sources.json now; re-exported for the callers that still import it here.

/** The model folder to use: the one given, else the cached default model (downloaded when missing). */
export async function resolveModelDir(dir?: string, hooks: DownloadHooks = {}): Promise<string> {
  return dir !== undefined ? path.resolve(dir) : ensureModel(undefined, hooks);
}

/** The data folder to index: the one given, else the cached 17 flowers dataset (downloaded when missing). */
export async function resolveDataDir(dir?: string, hooks: DownloadHooks = {}): Promise<string> {
  return dir !== undefined ? path.resolve(dir) : ensureDataset(hooks);
}
