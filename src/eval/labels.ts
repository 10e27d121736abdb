/** Class labels for eval: from the workspace's docs, or from a labels.csv like the fixture's. */
import path from 'node:path';
import { readLabelsCsv } from '../dataset/index.js';
import type { DocRecord } from '../store/index.js';

/**
 * The class of every doc (null where unknown): from `dataDir/labels.csv` when given (matched by
 * absolute path, then by path relative to the data folder, then by unique file name), else the
 * label stored with the doc at index time.
 */
export function docLabels(docs: readonly DocRecord[], dataDir?: string): (string | null)[] {
  if (dataDir === undefined) return docs.map((doc) => doc.label);
  const csvFile = path.join(dataDir, 'labels.csv');
  const byPath = readLabelsCsv(csvFile);
  const byName = new Map<string, string | null>();
  for (const [file, label] of byPath) {
    const name = path.basename(file);
    byName.set(name, byName.has(name) ? null : label); // null: the name is ambiguous
  }
  const labels = docs.map((doc) => byPath.get(path.resolve(doc.path)) ?? byPath.get(path.resolve(dataDir, doc.path)) ?? byName.get(path.basename(doc.path)) ?? null);
  if (docs.length > 0 && labels.every((label) => label === null)) {
    throw new Error(`${csvFile}: no indexed image is listed (e.g. ${docs[0].path}); is this the folder the workspace was indexed from?`);
  }
  return labels;
}
