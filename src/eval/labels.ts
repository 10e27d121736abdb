/** Class labels for eval: from the workspace's docs, or from a labels.csv like the fixture's. */
import fs from 'node:fs';
import path from 'node:path';
import type { DocRecord } from '../store/index.js';

/**
 * Reads `file,class_id,class_name` rows (header first; `file` relative to the csv's folder) into
 * absolute path → class name. Quoted fields are not supported: the fixture format has none.
 */
export function readLabelsCsv(csvFile: string): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(csvFile, 'utf8');
  } catch (error) {
    throw new Error(`${csvFile}: cannot read labels (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
  const fileColumn = header.indexOf('file');
  const classColumn = header.indexOf('class_name');
  if (fileColumn < 0 || classColumn < 0) {
    throw new Error(`${csvFile}: expected a header with "file" and "class_name" columns, got "${header.join(',')}"`);
  }
  const base = path.dirname(path.resolve(csvFile));
  const labels = new Map<string, string>();
  lines.forEach((line, i) => {
    const cells = line.split(',');
    const file = cells[fileColumn]?.trim();
    const label = cells[classColumn]?.trim();
    if (!file || !label) throw new Error(`${csvFile}:${i + 2}: missing file or class_name`);
    labels.set(path.resolve(base, file), label);
  });
  return labels;
}

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
  const labels = docs.map(
    (doc) => byPath.get(path.resolve(doc.path)) ?? byPath.get(path.resolve(dataDir, doc.path)) ?? byName.get(path.basename(doc.path)) ?? null,
  );
  if (docs.length > 0 && labels.every((label) => label === null)) {
    throw new Error(`${csvFile}: no indexed image is listed (e.g. ${docs[0]!.path}); is this the folder the workspace was indexed from?`);
  }
  return labels;
}
