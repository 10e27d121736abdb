/** Where downloaded datasets and models live between runs. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withLock } from '../util/lock.js';

/** `override`, else $FLOWER_NATIVE_CACHE, else ~/.cache/flower-native ($XDG_CACHE_HOME respected). */
export function cacheDir(override?: string): string {
  const chosen = override ?? process.env.FLOWER_NATIVE_CACHE;
  if (chosen) return path.resolve(chosen);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'flower-native');
}

/**
 * Base URL of a mirror holding the downloads under their usual file names ($FLOWER_NATIVE_MIRROR),
 * for machines that cannot reach the original hosts.
 */
export function mirrorUrl(fileName: string): string | undefined {
  const mirror = process.env.FLOWER_NATIVE_MIRROR;
  return mirror ? new URL(fileName, mirror.endsWith('/') ? mirror : `${mirror}/`).toString() : undefined;
}

/** The package's root folder (holding package.json), from src/ or from dist/src/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find flower-native's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/**
 * Makes sure cache entry `dir` (`<cache>/<kind>/<name>`) is there: returns at once when `ready()`,
 * else runs `fill()` holding the entry's lock, so that of two processes one fills the entry while
 * the other waits for it (told through `onWait`, naming `what` is being downloaded) and then finds
 * it ready. The lock files stay, in `<cache>/locks`, apart from the entries.
 */
export async function fillCacheEntry(dir: string, ready: () => boolean, fill: () => Promise<void>, what: string, onWait?: (message: string) => void): Promise<void> {
  if (ready()) return;
  const kindDir = path.dirname(dir);
  const locks = path.join(path.dirname(kindDir), 'locks');
  fs.mkdirSync(kindDir, { recursive: true });
  fs.mkdirSync(locks, { recursive: true });
  await withLock(
    path.join(locks, `${path.basename(kindDir)}-${path.basename(dir)}.lock`),
    async () => {
      if (!ready()) await fill();
    },
    (pid) => onWait?.(`waiting for process ${pid ?? '?'}, which is downloading ${what} into ${dir}`),
  );
}
