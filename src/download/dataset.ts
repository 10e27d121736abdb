/**
 * The Oxford 17 flowers dataset, fetched into `<cache>/datasets/17flowers` in the fixture's layout:
 * `jpg/image_NNNN.jpg`, `labels.csv` (file,class_id,class_name) and `SHA256SUMS`. Every image is
 * checked against the SHA256SUMS shipped in this package before the folder appears (atomically).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { fsyncDir, removeIfExists, writeFileAtomic } from '../util/files.js';
import { cacheDir, fillCacheEntry, mirrorUrl, packageRoot } from './cache.js';
import { downloadFile, sha256File, type DownloadHooks } from './http.js';

export const FLOWERS_URL = 'https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz';
/** In class order: images 1-80 are class 0, 81-160 class 1, and so on. */
export const FLOWER_CLASSES = [
  'daffodil',
  'snowdrop',
  'lily_valley',
  'bluebell',
  'crocus',
  'iris',
  'tigerlily',
  'tulip',
  'fritillary',
  'sunflower',
  'daisy',
  'colts_foot',
  'dandelion',
  'cowslip',
  'buttercup',
  'windflower',
  'pansy',
] as const;
export const IMAGES_PER_CLASS = 80;

const IMAGE_NAME = /^image_(\d{4})\.jpg$/;

export interface EnsureDatasetOptions extends DownloadHooks {
  cacheDir?: string;
  /** Download from here instead of Oxford VGG's address (or $FLOWER_NATIVE_MIRROR). */
  url?: string;
  /** A SHA256SUMS file (`<hex>  image_NNNN.jpg` lines) to check against instead of the bundled one. */
  checksums?: string;
  timeoutMs?: number;
}

/** The bundled checksum list of the 1360 images (resolved from the package root, so dist/ finds it too). */
export function bundledChecksumsFile(): string {
  return path.join(packageRoot(), 'src', 'download', '17flowers.SHA256SUMS');
}

/** Parse `sha256sum` output: file name → hex digest. */
export function parseSha256Sums(text: string, file: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trimEnd());
    if (!m) throw new Error(`${file}:${i + 1}: not a "<sha256>  <file>" line: ${JSON.stringify(line)}`);
    sums.set(m[2], m[1].toLowerCase());
  });
  return sums;
}

/** labels.csv for the given image names, as in the fixture: class = (image number - 1) / 80. */
export function labelsCsv(names: Iterable<string>): string {
  const lines = ['file,class_id,class_name'];
  for (const name of [...names].sort()) {
    const n = Number(IMAGE_NAME.exec(name)?.[1]);
    const classId = Math.floor((n - 1) / IMAGES_PER_CLASS);
    if (!(classId >= 0 && classId < FLOWER_CLASSES.length)) throw new Error(`${name}: not an image of the 17 flowers dataset (image_0001.jpg … image_1360.jpg)`);
    lines.push(`jpg/${name},${classId},${FLOWER_CLASSES[classId]}`);
  }
  return lines.join('\n') + '\n';
}

/** The dataset folder in the cache, downloading, checking and unpacking it first if needed. */
export async function ensureDataset(opts: EnsureDatasetOptions = {}): Promise<string> {
  const datasets = path.join(cacheDir(opts.cacheDir), 'datasets');
  const dir = path.join(datasets, '17flowers');
  // labels.csv exists only in a folder that was checked completely and renamed into place.
  await fillCacheEntry(
    dir,
    () => fs.existsSync(path.join(dir, 'labels.csv')),
    () => fillDataset(datasets, dir, opts),
    'the 17 flowers dataset',
    opts.onWait,
  );
  return dir;
}

/** Download (unless the archive is there), unpack, check every image, and rename into `dir`. */
async function fillDataset(datasets: string, dir: string, opts: EnsureDatasetOptions): Promise<void> {
  const checksumsFile = opts.checksums ?? bundledChecksumsFile();
  const checksumsText = fs.readFileSync(checksumsFile, 'utf8');
  const sums = parseSha256Sums(checksumsText, checksumsFile);
  const url = opts.url ?? mirrorUrl('17flowers.tgz') ?? FLOWERS_URL;
  const archive = path.join(cacheDir(opts.cacheDir), 'downloads', '17flowers.tgz');
  if (!fs.existsSync(archive)) {
    await downloadFile({
      url,
      dest: archive,
      onProgress: opts.onProgress,
      timeoutMs: opts.timeoutMs,
      offlineHint: `pass --data <folder of images>, or set FLOWER_NATIVE_CACHE to a folder that has datasets/17flowers`,
    });
  }

  const staging = path.join(datasets, `.17flowers.tmp-${process.pid}`);
  removeIfExists(staging);
  fs.mkdirSync(staging, { recursive: true });
  try {
    // The archive holds jpg/image_NNNN.jpg (and a files.txt we do not need).
    const wanted = (p: string) => IMAGE_NAME.test(path.posix.basename(p)) && path.posix.dirname(p.replace(/^\.\//, '')) === 'jpg';
    try {
      await tar.x({ file: archive, cwd: staging, strict: true, filter: (p) => wanted(p) });
    } catch (err) {
      throw new DamagedArchive(`cannot unpack it (${(err as Error).message})`);
    }
    const problems: string[] = [];
    for (const [name, sha] of sums) {
      const file = path.join(staging, 'jpg', name);
      if (!fs.existsSync(file)) problems.push(`${name} is missing`);
      else if ((await sha256File(file)) !== sha) problems.push(`${name} has the wrong sha256`);
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 5).join(', ') + (problems.length > 5 ? ` and ${problems.length - 5} more` : '');
      throw new DamagedArchive(`it does not match ${checksumsFile}: ${shown}`);
    }
    // Only the checked images make the dataset.
    for (const name of fs.readdirSync(path.join(staging, 'jpg'))) if (!sums.has(name)) removeIfExists(path.join(staging, 'jpg', name));
    fs.writeFileSync(path.join(staging, 'SHA256SUMS'), checksumsText);
    writeFileAtomic(path.join(staging, 'labels.csv'), labelsCsv(sums.keys()));
    removeIfExists(dir);
    fs.renameSync(staging, dir);
    fsyncDir(datasets);
  } catch (err) {
    removeIfExists(staging);
    if (err instanceof DamagedArchive) {
      removeIfExists(archive);
      throw new Error(`${url}: the downloaded archive is damaged: ${err.message}; it was deleted, run again to download it anew`);
    }
    throw err;
  }
  removeIfExists(archive);
}

class DamagedArchive extends Error {}
