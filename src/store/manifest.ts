/**
 * manifest.json: what built an index (format version, model, chunking parameters) and a count
 * summary. It is written last when an index is created and removed first when one is replaced, so
 * its presence marks a usable index.
 */
import fs from 'node:fs';
import path from 'node:path';
import { IncompatibleIndexError, NoIndexError } from '../errors.js';

/** Bumped whenever the on-disk layout changes; older or newer workspaces must be rebuilt. */
export const FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const MATRIX_FILE = 'chunks.npy';
export const DB_FILE = 'index.sqlite';

export interface ModelIdentity {
  readonly name: string;
  readonly sha256: string;
  readonly dim: number;
}

export interface WorkspaceManifest {
  readonly formatVersion: number;
  readonly model: ModelIdentity;
  /** The chunking parameters the index was built with; compared for equality. */
  readonly chunking: Record<string, unknown>;
  readonly created: string;
  readonly updated: string;
  /** Summary as of the last clean close or repair; index.sqlite is authoritative. */
  readonly counts: { readonly docs: number; readonly chunks: number };
  readonly matrix: { readonly file: string; readonly dtype: '<f4'; readonly dataOffset: number };
  readonly database: string;
}

/** Reads and checks a workspace's manifest (`root` is where its files are: the workspace or its staging directory). */
export function readManifest(dir: string, root: string): WorkspaceManifest {
  const file = path.join(root, MANIFEST_FILE);
  let manifest: WorkspaceManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as WorkspaceManifest;
  } catch (err) {
    throw new NoIndexError(dir, `index at ${dir} is damaged: cannot read ${file} (${(err as Error).message}); re-index with --rebuild`);
  }
  if (manifest.formatVersion !== FORMAT_VERSION) {
    throw new IncompatibleIndexError(dir, [`format version: the index uses ${manifest.formatVersion}, this flower-native reads ${FORMAT_VERSION}`]);
  }
  if (!manifest.model || typeof manifest.model.sha256 !== 'string' || !Number.isInteger(manifest.model.dim) || typeof manifest.chunking !== 'object') {
    throw new NoIndexError(dir, `index at ${dir} is damaged: ${file} lacks model or chunking; re-index with --rebuild`);
  }
  return manifest;
}

/** What a run expects of an index: the model it encodes with (its sha256 at least) and its chunking parameters. */
export interface ExpectedIdentity {
  readonly model: Pick<ModelIdentity, 'sha256'> & Partial<ModelIdentity>;
  readonly chunking: Record<string, unknown>;
}

/**
 * Throws IncompatibleIndexError naming every way an index built with `have` (at `location`) differs
 * from what this run expects: both stores, the Workspace and the PostgresStore, refuse another model
 * or chunking through this one check, in the same words.
 */
export function assertSameIdentity(location: string, have: { readonly model: ModelIdentity; readonly chunking: Record<string, unknown> }, expected: ExpectedIdentity): void {
  const differences: string[] = [];
  if (have.model.sha256 !== expected.model.sha256) {
    differences.push(
      `model sha256: the index was built with ${have.model.sha256} (${have.model.name}), this run uses ${expected.model.sha256}${expected.model.name ? ` (${expected.model.name})` : ''}`,
    );
  } else if (expected.model.dim !== undefined && have.model.dim !== expected.model.dim) {
    differences.push(`embedding size: the index holds ${have.model.dim}-d vectors, this run makes ${expected.model.dim}-d`);
  }
  if (canonicalJson(have.chunking) !== canonicalJson(expected.chunking)) {
    differences.push(`chunking params: the index used ${canonicalJson(have.chunking)}, this run uses ${canonicalJson(expected.chunking)}`);
  }
  if (differences.length > 0) throw new IncompatibleIndexError(location, differences);
}

/** The model identity a writer records: checked before anything is written. */
export function checkModelIdentity(model: ModelIdentity): void {
  if (!model || typeof model.name !== 'string' || typeof model.sha256 !== 'string' || !Number.isSafeInteger(model.dim) || model.dim <= 0) {
    throw new TypeError('openForWrite: model must be { name: string, sha256: string, dim: positive integer }');
  }
}

/** JSON with object keys sorted, so parameter objects compare by value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
