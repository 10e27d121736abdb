/**
 * Image decoding for the flows: any supported file → sRGB 8-bit RGB, EXIF-oriented, alpha flattened
 * on white, resized so its shorter side has a fixed length. All pixel work runs in sharp (libvips on
 * libuv threads), so awaiting these functions never blocks the event loop.
 */
import { open as openFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import type { RawImage } from '../kernels/types.js';

export interface DecodedImage extends RawImage {
  readonly channels: 3;
  /** Size of the source image after EXIF orientation, before resizing. */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  /** Container format as sharp names it: jpeg, png, webp, gif, tiff, heif. */
  readonly format: string;
}

export interface DecodeOptions {
  /** Length of the shorter side after resizing (up or down). */
  readonly shorterSide: number;
  /** Images with more pixels than this are refused from their header, before any decoding. */
  readonly maxPixels?: number;
  /** Images whose shorter side is below this are refused (too little content to chunk). */
  readonly minSide?: number;
  /** Images whose longer side is more than this many times the shorter are refused from their header. */
  readonly maxAspectRatio?: number;
}

/** File extensions the loader picks up when walking a folder. */
export const IMAGE_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif'];

/** Formats accepted after sniffing the content (the extension is never trusted). heif = AVIF here. */
export const ACCEPTED_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

export const DEFAULT_MAX_PIXELS = 100_000_000;
export const DEFAULT_MIN_SIDE = 16;
/**
 * Longer side : shorter side. Resizing the shorter side up makes the longer one grow with it: a tiny
 * 16x20000 PNG becomes 256x320000 px and thousands of chunks. 20:1 keeps real panoramas.
 */
export const DEFAULT_MAX_ASPECT_RATIO = 20;

const WHITE = { r: 255, g: 255, b: 255 };

/**
 * While a flow decodes: one libvips worker thread per image and no operation cache, so images are
 * decoded once each, in parallel on libuv threads, beside the encoder threads that own the cores.
 */
const PIPELINE_SETTINGS = { concurrency: 1, cache: false } as const;

let pipelineHolders = 0;
let hostSettings: { concurrency: number; cache: sharp.CacheResult } | undefined;

/**
 * sharp's settings are process-wide and may be the host application's: they are changed only while
 * a flow holds them and put back when the last holder releases them.
 */
export function holdDecodingSettings(): () => void {
  if (pipelineHolders++ === 0) {
    hostSettings = { concurrency: sharp.concurrency(), cache: sharp.cache() };
    sharp.concurrency(PIPELINE_SETTINGS.concurrency);
    sharp.cache(PIPELINE_SETTINGS.cache);
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--pipelineHolders === 0 && hostSettings) {
      sharp.concurrency(hostSettings.concurrency);
      const { memory, files, items } = hostSettings.cache;
      sharp.cache({ memory: memory.max, files: files.max, items: items.max });
    }
  };
}

/** Versions, and the settings flows decode with, for `doctor`. */
export function imageInfo(): { sharp: string; libvips: string; concurrency: number; cache: boolean } {
  return { sharp: sharp.versions.sharp ?? 'unknown', libvips: sharp.versions.vips, ...PIPELINE_SETTINGS };
}

type ImageSource = string | { name: string; bytes: Uint8Array };

/**
 * Decode `file` (a path, or named bytes) to RGB with the shorter side resized to `opts.shorterSide`.
 * Animated images contribute their first frame. Throws InputError for anything that cannot be used.
 */
export async function decodeImage(file: ImageSource, opts: DecodeOptions): Promise<DecodedImage> {
  const name = typeof file === 'string' ? file : file.name;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const minSide = opts.minSide ?? DEFAULT_MIN_SIDE;
  if (!(Number.isInteger(opts.shorterSide) && opts.shorterSide > 0)) throw new RangeError(`shorterSide must be a positive integer, got ${opts.shorterSide}`);

  const input = typeof file === 'string' ? file : Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength);
  const size = typeof input === 'string' ? await fileSize(name) : input.byteLength;
  if (size === 0) throw new InputError(name, 'empty file');

  // The header is read without a pixel limit so that a bomb is refused with its size in the reason;
  // limitInputPixels still guards the decode. failOn 'error' rejects truncated and broken data but
  // tolerates the benign warnings many real-world JPEGs carry.
  const open = (limitInputPixels: number | false) => sharp(input, { failOn: 'error', limitInputPixels, pages: 1 });
  let meta: sharp.Metadata;
  try {
    meta = await open(false).metadata();
  } catch (err) {
    // libvips does not always name the format in its message: the first bytes do.
    throw new InputError(name, describeSharpError(err, sniffFormat(await readHead(input))));
  }
  const format = meta.format;
  if (!format || !ACCEPTED_FORMATS.has(format)) throw new InputError(name, `unsupported image format: ${format ?? 'unknown'}`);
  // sharp's prebuilt libvips reads AVIF but has no HEVC decoder for HEIC (e.g. phone photos).
  if (format === 'heif' && meta.compression === 'hevc') throw new InputError(name, 'unsupported image format: HEIC (HEVC-compressed HEIF)');
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new InputError(name, `truncated or corrupt ${formatLabel(format)} (no image size in header)`);
  if (width * height > maxPixels) {
    throw new InputError(name, `image too large: ${width}x${height} px exceeds the ${formatMegapixels(maxPixels)} limit`);
  }
  if (Math.min(width, height) < minSide) throw new InputError(name, `image too small: ${width}x${height} px, minimum ${minSide} px`);
  const maxAspectRatio = opts.maxAspectRatio ?? DEFAULT_MAX_ASPECT_RATIO;
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (aspect > maxAspectRatio) {
    throw new InputError(name, `extreme aspect ratio: ${width}x${height} px is ${aspect.toFixed(0)}:1, limit ${maxAspectRatio}:1`, 'image_limit_exceeded');
  }

  const target = shorterSideSize(width, height, opts.shorterSide);
  try {
    const { data, info } = await open(Math.max(1, Math.floor(maxPixels)))
      .autoOrient()
      .flatten({ background: WHITE })
      .resize(target.width, target.height, { fit: 'fill' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== target.width || info.height !== target.height) {
      throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels}, expected ${target.width}x${target.height}x3`);
    }
    return { data: bytesOf(data), width: info.width, height: info.height, channels: 3, sourceWidth: width, sourceHeight: height, format };
  } catch (err) {
    throw new InputError(name, describeSharpError(err, format));
  }
}

/**
 * Squash the whole image to exactly width × height (aspect ratio not kept): the whole-image chunk
 * sees all of the picture, as the model's 224x224 input expects, rather than a centre crop of it.
 */
export async function resizeExact(img: RawImage, width: number, height: number): Promise<RawImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: bytesOf(data), width: info.width, height: info.height, channels: img.channels };
}

/** Output size with the shorter side = `shorterSide` and the aspect ratio kept (rounded, ≥ 1 px). */
export function shorterSideSize(width: number, height: number, shorterSide: number): { width: number; height: number } {
  if (width <= height) return { width: shorterSide, height: Math.max(1, Math.round((height * shorterSide) / width)) };
  return { width: Math.max(1, Math.round((width * shorterSide) / height)), height: shorterSide };
}

async function fileSize(file: string): Promise<number> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new InputError(file, 'not a regular file');
    return s.size;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(file, code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? String(err)})`);
  }
}

/** Turn sharp/libvips messages into a short reason; the libvips detail is kept after a colon. */
function describeSharpError(err: unknown, format: string | undefined): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
  if (/unsupported image format/i.test(message)) return 'not an image (unknown format)';
  if (/exceeds pixel limit/i.test(message)) return 'image too large: exceeds the pixel limit';
  if (/is empty/i.test(message)) return 'empty file';
  const label = formatLabel(format);
  const detail = message.replace(/^Input (buffer|file) has corrupt header:\s*/i, '');
  return `truncated or corrupt ${label}${detail ? ` (${detail})` : ''}`;
}

/** The container format from a file's first bytes (sharp's names), for error messages. */
function sniffFormat(head: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head[0] === 0xff && head[1] === 0xd8) return 'jpeg';
  if (head[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (ascii(0, 4) === 'GIF8') return 'gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(4, 8) === 'ftyp') return 'heif';
  return undefined;
}

async function readHead(input: string | Buffer): Promise<Uint8Array> {
  if (typeof input !== 'string') return input.subarray(0, 12);
  const handle = await openFile(input, 'r');
  try {
    const head = Buffer.alloc(12);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function formatLabel(format: string | undefined): string {
  if (!format) return 'image';
  return format === 'heif' ? 'AVIF/HEIF' : format.toUpperCase();
}

function formatMegapixels(pixels: number): string {
  return `${Number((pixels / 1e6).toPrecision(3))} MP`;
}

/** A plain Uint8Array view of sharp's Buffer (same memory), so callers can transfer it. */
function bytesOf(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
