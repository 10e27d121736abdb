/**
 * A small real index for the server and browser tests (and the server bench): by default 4 images
 * each of daffodil (class 0), sunflower (9) and daisy (10), copied with their rows of the fixture
 * labels.csv into a temp data folder and indexed with the fixture model. Query images outside the
 * index (e.g. daisy 805) test retrieval. In bench/ so the server bench can use it without importing test/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { indexImages } from '../src/index.js';
import { flowerImage, flowersDir, modelDir } from './fixtures.js';

/** Fixture image numbers in the default index: 1-4, 721-724, 801-804. */
export const INDEXED_IMAGES: readonly number[] = [0, 9, 10].flatMap((cls) => [1, 2, 3, 4].map((i) => cls * 80 + i));

/** The fixture's labels.csv rows by file name (image_0001.jpg → "image_0001.jpg,0,daffodil"). */
function fixtureLabelRows(): Map<string, string> {
  const lines = fs.readFileSync(path.join(flowersDir, 'labels.csv'), 'utf8').split(/\r?\n/).slice(1).filter(Boolean);
  return new Map(
    lines.map((line) => {
      const [file, ...rest] = line.split(',');
      return [path.basename(file), [path.basename(file), ...rest].join(',')];
    }),
  );
}

/** Class name of fixture image n, from the fixture labels.csv. */
export function classOf(image: number): string {
  return (
    fixtureLabelRows()
      .get(path.basename(flowerImage(image)))
      ?.split(',')[2] ?? 'unknown'
  );
}

export interface SmallIndex {
  readonly dataDir: string;
  readonly workspace: string;
  /** Removes the temp folders. */
  cleanup(): void;
}

/** Index `images` (fixture numbers; default INDEXED_IMAGES) into a fresh temp workspace. */
export async function buildSmallIndex(prefix: string, images: readonly number[] = INDEXED_IMAGES): Promise<SmallIndex> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const dataDir = path.join(root, 'data');
  const workspace = path.join(root, 'workspace');
  fs.mkdirSync(dataDir);
  const labelRows = fixtureLabelRows();
  const rows = ['file,class_id,class_name'];
  for (const n of images) {
    const name = path.basename(flowerImage(n));
    fs.copyFileSync(flowerImage(n), path.join(dataDir, name));
    rows.push(labelRows.get(name) ?? `${name},-1,unknown`);
  }
  fs.writeFileSync(path.join(dataDir, 'labels.csv'), `${rows.join('\n')}\n`);
  try {
    const summary = await indexImages({ data: dataDir, workspace, model: modelDir });
    if (summary.indexed !== images.length) throw new Error(`small index: indexed ${summary.indexed} of ${images.length} (${JSON.stringify(summary.skipped)})`);
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return { dataDir, workspace, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}
