/** The image files of a data folder. */
import type fs from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS } from '../image/index.js';

export interface ImageListing {
  /** Image files (by extension, case-insensitive), sorted; a symbolic link is listed under its own path. */
  readonly files: string[];
  /** What looked like an image or a folder but cannot be walked: broken links, link loops, unreadable subfolders. */
  readonly skipped: { file: string; reason: string }[];
}

/**
 * Every image file under `dir`, recursively, following symbolic links to files and folders (a link
 * back to a folder being walked is a loop, skipped), leaving out the workspace if it lies inside.
 */
export async function listImages(dir: string, exclude?: string): Promise<ImageListing> {
  const extensions = new Set(IMAGE_EXTENSIONS.map((ext) => `.${ext}`));
  const isImage = (name: string) => extensions.has(path.extname(name).toLowerCase());
  const files: string[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);

  /** `walking`: the folders on the way here, by identity, so a link back to one is seen for the loop it is. */
  const walk = async (folder: string, walking: ReadonlyMap<string, string>): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (walking.size === 1) throw new Error(`${dir}: cannot read the data folder (${code(err)})`);
      skipped.push({ file: folder, reason: `cannot read folder (${code(err)})` });
      return;
    }
    for (const entry of entries) {
      const file = path.join(folder, entry.name);
      if (exclude && !path.relative(exclude, file).startsWith('..')) continue;
      if (entry.isFile()) {
        if (isImage(entry.name)) files.push(file);
      } else if (entry.isDirectory()) {
        await walkInto(file, walking);
      } else if (entry.isSymbolicLink()) {
        let target: fs.Stats;
        try {
          target = await stat(file);
        } catch (err) {
          if (code(err) === 'ELOOP') skipped.push({ file, reason: 'symbolic link loop (ELOOP)' });
          else if (isImage(entry.name))
            skipped.push({
              file,
              reason: code(err) === 'ENOENT' ? `broken symbolic link: its target ${path.resolve(folder, await readlink(file))} does not exist` : `cannot follow symbolic link (${code(err)})`,
            });
          continue;
        }
        if (target.isDirectory()) await walkInto(file, walking);
        else if (target.isFile() && isImage(entry.name)) files.push(file);
      }
    }
  };
  const walkInto = async (folder: string, walking: ReadonlyMap<string, string>): Promise<void> => {
    let id: string;
    try {
      const st = await stat(folder, { bigint: true });
      id = `${st.dev}:${st.ino}`;
    } catch (err) {
      if (walking.size === 0) throw new Error(`${dir}: cannot read the data folder (${code(err)})`);
      skipped.push({ file: folder, reason: `cannot read folder (${code(err)})` });
      return;
    }
    const ancestor = walking.get(id);
    if (ancestor !== undefined) {
      skipped.push({ file: folder, reason: `symbolic link loop: ${ancestor} is already being walked` });
      return;
    }
    await walk(folder, new Map(walking).set(id, folder));
  };

  await walkInto(dir, new Map());
  const byFile = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  return { files: files.sort(), skipped: skipped.sort(byFile) };
}

/** The image files of listImages, without what was skipped. */
export async function findImages(dir: string, exclude?: string): Promise<string[]> {
  return (await listImages(dir, exclude)).files;
}
