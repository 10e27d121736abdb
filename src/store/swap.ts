/**
 * Rebuilds: a rebuild of an existing index is written into a staging directory inside the
 * workspace and swapped in only once complete (marked READY), so the old index stays readable
 * until then and an interrupted rebuild never looks complete.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, removeIfExists } from '../util/files.js';
import { DB_FILE, MANIFEST_FILE, MATRIX_FILE } from './manifest.js';
import { SOURCES_FILE } from './sources.js';

/** Where a rebuild of an existing index is staged, inside the workspace. */
export const STAGING_DIR = '.rebuild';
/** Written into the staging directory once the rebuild is complete: from then on it must be swapped in. */
export const READY_MARK = 'READY';

/** Marks the staged rebuild complete, then swaps it in. */
export function completeRebuild(dir: string): void {
  const staging = path.join(dir, STAGING_DIR);
  fs.writeFileSync(path.join(staging, READY_MARK), '');
  fsyncDir(staging);
  finishInterruptedSwap(dir);
}

/** If a finished rebuild is staged (READY), swap it in; idempotent, so a crash mid-swap is redone. */
export function finishInterruptedSwap(dir: string): void {
  const staging = path.join(dir, STAGING_DIR);
  if (!fs.existsSync(path.join(staging, READY_MARK))) return;
  // Without its manifest the old index reads as absent, never as a mix of old and new files.
  removeIfExists(path.join(dir, MANIFEST_FILE));
  fsyncDir(dir);
  for (const f of [`${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`]) removeIfExists(path.join(dir, f));
  for (const f of [MATRIX_FILE, DB_FILE, SOURCES_FILE, MANIFEST_FILE]) {
    if (fs.existsSync(path.join(staging, f))) fs.renameSync(path.join(staging, f), path.join(dir, f));
  }
  fsyncDir(dir);
  removeIfExists(staging);
}
