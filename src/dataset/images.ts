/** The image files of a data folder. */
import type fs from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS } from '../image/index.js';

/** Every image file under `dir` (by extension, case-insensitive), sorted, leaving out the workspace if it lies inside. */
export async function findImages(dir: string, exclude?: string): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    throw new Error(`${dir}: cannot read the data folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const extensions = new Set(IMAGE_EXTENSIONS.map((ext) => `.${ext}`));
  return entries
    .filter((entry) => entry.isFile() && extensions.has(path.extname(entry.name).toLowerCase()))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !exclude || path.relative(exclude, file).startsWith('..'))
    .sort();
}
