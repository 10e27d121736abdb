/**
 * What a re-run over a folder changes in the index besides new content: docs whose file moved
 * (same sha256, listed under another path) get the new path; docs whose content is gone from the
 * folder are removed. Decided here from the docs and the run's listing, applied by Workspace.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DocRecord } from './metadata.js';

export interface ListedFile {
  readonly path: string;
  readonly sha256: string;
}

export interface ReconcileOptions {
  /** Keep docs whose content is no longer listed. */
  keepMissing?: boolean;
  /**
   * The folder the listing covers entirely: only docs under it can be removed, and a doc elsewhere
   * moves only when its own file is gone (another folder indexed into the same workspace keeps its
   * docs). Default: the listing covers every doc.
   */
  under?: string;
  /** Listed paths whose content could not be read this run: their docs are kept as they are. */
  unreadable?: readonly string[];
}

export interface DocMove {
  readonly id: number;
  readonly from: string;
  readonly to: string;
}

export interface WorkspaceChanges {
  /** Docs whose path was updated to where their content is listed now. */
  readonly moved: readonly { from: string; to: string; sha256: string }[];
  /** Docs removed because their content is no longer listed (none with keepMissing). */
  readonly removed: readonly { path: string; sha256: string }[];
}

/** The moves and removals that make `docs` agree with `listing`. */
export function planChanges(docs: readonly DocRecord[], listing: readonly ListedFile[], opts: ReconcileOptions): { moves: DocMove[]; removals: DocRecord[] } {
  const pathsBySha = new Map<string, string[]>();
  for (const f of listing) {
    const paths = pathsBySha.get(f.sha256);
    if (paths) paths.push(f.path);
    else pathsBySha.set(f.sha256, [f.path]);
  }
  const unreadable = new Set(opts.unreadable);
  const inScope = (file: string) => {
    if (opts.under === undefined) return true;
    const relative = path.relative(opts.under, file);
    return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
  };
  const moves: DocMove[] = [];
  const removals: DocRecord[] = [];
  for (const doc of docs) {
    const paths = pathsBySha.get(doc.sha256);
    if (paths) {
      // A doc stays where it is when any listed copy of its content is at its path.
      if (paths.includes(doc.path) || (!inScope(doc.path) && fs.existsSync(doc.path))) continue;
      moves.push({ id: doc.id, from: doc.path, to: paths.reduce((a, b) => (b < a ? b : a)) });
    } else if (!opts.keepMissing && inScope(doc.path) && !unreadable.has(doc.path)) {
      removals.push(doc);
    }
  }
  return { moves, removals };
}
