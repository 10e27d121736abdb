/**
 * `eval --near-duplicates`: a seeded set of edited copies of indexed photos (sharp), each queried
 * through the product's query flow (decode, chunk, encode, rank), and recall@1 per kind of edit and
 * ranking mode: a hit is the source photo first, or one of its duplicates (findDuplicates).
 */
import sharp from 'sharp';
import { openIndex } from '../flows/search.js';
import type { RankMode } from '../search/index.js';

export const EDIT_KINDS = ['crop_half_area', 'crop_quarter_area', 'mirror', 'rotate', 'downscale', 'jpeg', 'colour', 'grayscale', 'blur'] as const;
export type EditKind = (typeof EDIT_KINDS)[number];

export interface NearDuplicateOptions {
  readonly workspace: string;
  readonly modes: readonly RankMode[];
  /** Edited queries in all (default 540: 60 per kind). */
  readonly count?: number;
  readonly seed?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface NearDuplicateResult {
  readonly count: number;
  readonly seed: number;
  readonly modes: readonly RankMode[];
  /** recall@1 per mode and edit kind, and over all kinds. */
  readonly recall: Record<RankMode, Record<EditKind | 'all', number>>;
  readonly perKind: Record<EditKind, number>;
  readonly misses: { source: string; edit: EditKind; mode: RankMode; got: string }[];
  readonly seconds: number;
}

/** A small deterministic generator (LCG), so a seed names the same set everywhere. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** The edited copy of `file`, as PNG (or JPEG for the re-compression) bytes. */
export async function editImage(file: string, edit: EditKind, next: () => number): Promise<Buffer> {
  const image = () => sharp(file).autoOrient();
  const { width = 1, height = 1 } = await image()
    .toBuffer({ resolveWithObject: true })
    .then((r) => r.info);
  const crop = (side: number) => {
    const w = Math.max(1, Math.round(width * side));
    const h = Math.max(1, Math.round(height * side));
    return { left: Math.floor(next() * (width - w + 1)), top: Math.floor(next() * (height - h + 1)), width: w, height: h };
  };
  switch (edit) {
    case 'crop_half_area':
      return image().extract(crop(Math.SQRT1_2)).png().toBuffer();
    case 'crop_quarter_area':
      return image().extract(crop(0.5)).png().toBuffer();
    case 'mirror':
      return image().flop().png().toBuffer();
    case 'rotate': {
      // 3–10° either way, then the central 80 % so little of the fill shows.
      const degrees = (next() < 0.5 ? -1 : 1) * (3 + 7 * next());
      const rotated = await image().rotate(degrees, { background: '#ffffff' }).png().toBuffer({ resolveWithObject: true });
      const w = Math.round(width * 0.8);
      const h = Math.round(height * 0.8);
      return sharp(rotated.data)
        .extract({ left: Math.floor((rotated.info.width - w) / 2), top: Math.floor((rotated.info.height - h) / 2), width: w, height: h })
        .png()
        .toBuffer();
    }
    case 'downscale':
      return image()
        .resize({ width: Math.max(1, Math.round(width / 4)) })
        .png()
        .toBuffer();
    case 'jpeg':
      return image().jpeg({ quality: 8 }).toBuffer();
    case 'colour':
      return image()
        .modulate({ brightness: 0.65 + 0.7 * next(), saturation: 0.5 + next(), hue: Math.round(-30 + 60 * next()) })
        .png()
        .toBuffer();
    case 'grayscale':
      return image().grayscale().png().toBuffer();
    case 'blur':
      return image()
        .blur(2 + 2 * next())
        .png()
        .toBuffer();
  }
}

export async function evaluateNearDuplicates(options: NearDuplicateOptions): Promise<NearDuplicateResult> {
  const started = performance.now();
  const count = options.count ?? 60 * EDIT_KINDS.length;
  const seed = options.seed ?? 1;
  const next = random(seed);
  const searcher = await openIndex(options.workspace);
  try {
    const docs = searcher.workspace.docs();
    const twins = new Map<number, Set<number>>();
    for (const group of searcher.duplicates().groups) for (const doc of group) twins.set(doc, new Set(group));
    const hits = Object.fromEntries(options.modes.map((mode) => [mode, Object.fromEntries([...EDIT_KINDS, 'all'].map((k) => [k, 0]))])) as Record<RankMode, Record<EditKind | 'all', number>>;
    const perKind = Object.fromEntries(EDIT_KINDS.map((k) => [k, 0])) as Record<EditKind, number>;
    const misses: NearDuplicateResult['misses'] = [];
    for (let i = 0; i < count; i++) {
      const edit = EDIT_KINDS[i % EDIT_KINDS.length];
      const source = docs[Math.floor(next() * docs.length)];
      const bytes = await editImage(source.path, edit, next);
      perKind[edit]++;
      for (const mode of options.modes) {
        const top = (await searcher.search(bytes, { mode, top: 1, name: `${edit} of ${source.path}` })).results[0];
        const hit = top !== undefined && (top.docId === source.id || (twins.get(source.id)?.has(top.docId) ?? false));
        if (hit) hits[mode][edit]++;
        else misses.push({ source: source.path, edit, mode, got: top?.path ?? '(nothing)' });
      }
      options.onProgress?.(i + 1, count);
    }
    for (const mode of options.modes) {
      const total = EDIT_KINDS.reduce((sum, k) => sum + hits[mode][k], 0);
      for (const k of EDIT_KINDS) hits[mode][k] /= Math.max(perKind[k], 1);
      hits[mode].all = total / count;
    }
    return { count, seed, modes: options.modes, recall: hits, perKind, misses, seconds: (performance.now() - started) / 1000 };
  } finally {
    await searcher.close();
  }
}
