/** labels.csv: the class of each image of a data folder (the fixture's and the 17 flowers download's format). */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';

/**
 * Reads `file,class_id,class_name` rows (header first, columns in any order; `file` relative to the
 * csv's folder) into absolute path → class name. Fields may be quoted ("daisy, white").
 */
export function readLabelsCsv(csvFile: string): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(csvFile, 'utf8');
  } catch (error) {
    throw new Error(`${csvFile}: cannot read labels (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let rows: { record: string[]; info: { lines: number } }[];
  try {
    // With `info: true` each row comes as { record, info }, which csv-parse's typings do not model.
    rows = parse(text, { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }) as unknown as typeof rows;
  } catch (error) {
    throw new Error(`${csvFile}: not a readable CSV file (${(error as Error).message})`);
  }
  const header = rows.shift()?.record ?? [];
  const fileColumn = header.indexOf('file');
  const classColumn = header.indexOf('class_name');
  if (fileColumn < 0 || classColumn < 0) {
    throw new Error(`${csvFile}: expected a header with "file" and "class_name" columns, got "${header.join(',')}"`);
  }
  const base = path.dirname(path.resolve(csvFile));
  const labels = new Map<string, string>();
  for (const { record, info } of rows) {
    const file = record[fileColumn];
    const label = record[classColumn];
    if (!file || !label) throw new Error(`${csvFile}:${info.lines}: missing file or class_name`);
    labels.set(path.resolve(base, file), label);
  }
  return labels;
}
