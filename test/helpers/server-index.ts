/**
 * A small real index for the server and browser tests: 4 images each of daffodil (class 0),
 * sunflower (9) and daisy (10), copied with a labels.csv into a temp data folder and indexed with
 * the fixture model. Query images outside the index (e.g. daisy 805) test retrieval.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { indexImages } from '../../src/index.js';
import { flowerImage, modelDir } from '../fixtures.js';

export const CLASS_NAMES: Readonly<Record<number, string>> = { 0: 'daffodil', 9: 'sunflower', 10: 'daisy' };
/** Fixture image numbers in the index: 1-4, 721-724, 801-804. */
export const INDEXED_IMAGES: readonly number[] = [0, 9, 10].flatMap((cls) => [1, 2, 3, 4].map((i) => cls * 80 + i));

export function classOf(image: number): string {
  return CLASS_NAMES[Math.floor((image - 1) / 80)] ?? 'unknown';
}

export interface SmallIndex {
  readonly dataDir: string;
  readonly workspace: string;
  /** Removes the temp folders. */
  cleanup(): void;
}

export async function buildSmallIndex(prefix: string): Promise<SmallIndex> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const dataDir = path.join(root, 'data');
  const workspace = path.join(root, 'workspace');
  fs.mkdirSync(dataDir);
  const rows = ['file,class_id,class_name'];
  for (const n of INDEXED_IMAGES) {
    const name = path.basename(flowerImage(n));
    fs.copyFileSync(flowerImage(n), path.join(dataDir, name));
    rows.push(`${name},${Math.floor((n - 1) / 80)},${classOf(n)}`);
  }
  fs.writeFileSync(path.join(dataDir, 'labels.csv'), `${rows.join('\n')}\n`);
  const summary = await indexImages({ data: dataDir, workspace, model: modelDir });
  if (summary.indexed !== INDEXED_IMAGES.length) throw new Error(`small index: indexed ${summary.indexed} of ${INDEXED_IMAGES.length} (${JSON.stringify(summary.skipped)})`);
  return { dataDir, workspace, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}
