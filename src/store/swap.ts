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

/** Tests only: called after each step of a swap (and with 'staged' just before READY is written), to crash there. */
export const swapHooks: { afterStep?: (step: string) => void } = {};

type SwapStep = readonly [name: string, run: (dir: string, staging: string) => void];

/**
 * The swap, in order. Each step is idempotent and looks at what is still staged to know whether
 * it is done, so redoing the swap from the top after a crash at any point finishes it: the new
 * manifest moves last, so while it is staged the old index is not yet replaced, and once it is in
 * nothing may touch the files it describes.
 */
const SWAP_STEPS: readonly SwapStep[] = [
  // Without its manifest the old index reads as absent, never as a mix of old and new files.
  [
    'remove old manifest',
    (dir, staging) => {
      if (!fs.existsSync(path.join(staging, MANIFEST_FILE))) return;
      removeIfExists(path.join(dir, MANIFEST_FILE));
      fsyncDir(dir);
    },
  ],
  // A journal of the old database would be played back into the new one.
  [
    'remove old journals',
    (dir, staging) => {
      if (!fs.existsSync(path.join(staging, DB_FILE))) return;
      for (const f of [`${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`]) removeIfExists(path.join(dir, f));
    },
  ],
  ...[MATRIX_FILE, DB_FILE, SOURCES_FILE].map((f): SwapStep => [`move ${f}`, (dir, staging) => moveIn(dir, staging, f)]),
  // The renames above are durable before the manifest that makes them an index.
  [
    'move manifest.json',
    (dir, staging) => {
      fsyncDir(dir);
      moveIn(dir, staging, MANIFEST_FILE);
      fsyncDir(dir);
    },
  ],
  ['remove staging', (_dir, staging) => removeIfExists(staging)],
];

function moveIn(dir: string, staging: string, file: string): void {
  if (fs.existsSync(path.join(staging, file))) fs.renameSync(path.join(staging, file), path.join(dir, file));
}

/** Every point a swap can be interrupted at, in order (for the crash tests). */
export function swapStepNames(): string[] {
  return ['staged', 'ready', ...SWAP_STEPS.map(([name]) => name)];
}

/** Marks the staged rebuild complete, then swaps it in. */
export function completeRebuild(dir: string): void {
  const staging = path.join(dir, STAGING_DIR);
  swapHooks.afterStep?.('staged');
  fs.writeFileSync(path.join(staging, READY_MARK), '');
  fsyncDir(staging);
  swapHooks.afterStep?.('ready');
  finishInterruptedSwap(dir);
}

/** Under the write lock: swap in a rebuild that was ready, drop one that was not (nothing of it is worth keeping). */
export function settleStaging(dir: string): void {
  finishInterruptedSwap(dir);
  removeIfExists(path.join(dir, STAGING_DIR));
}

/** If a finished rebuild is staged (READY), swap it in; idempotent, so a crash mid-swap is redone. */
function finishInterruptedSwap(dir: string): void {
  const staging = path.join(dir, STAGING_DIR);
  if (!fs.existsSync(path.join(staging, READY_MARK))) return;
  for (const [name, run] of SWAP_STEPS) {
    run(dir, staging);
    swapHooks.afterStep?.(name);
  }
}
