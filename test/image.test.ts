import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { InputError } from '../src/errors.js';
import type { FlowDoc } from '../src/executors/types.js';
import { decodeImage, IMAGE_EXTENSIONS, resizeExact, shorterSideSize } from '../src/image/index.js';
import { flowerImage } from '../bench/fixtures.js';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flower-image-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, bytes: Uint8Array | string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

function solid(width: number, height: number, background: string | sharp.RGBA, channels: 3 | 4 = 3): sharp.Sharp {
  return sharp({ create: { width, height, channels, background } });
}

/** RGB of the pixel at (x, y). */
function pixel(img: { data: Uint8Array; width: number }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

async function rejectsWith(t: import('ava').ExecutionContext, file: string | { name: string; bytes: Uint8Array }, reason: RegExp, opts = { shorterSide: 256 }) {
  const err = await t.throwsAsync(decodeImage(file, opts), { instanceOf: InputError });
  t.regex(err.reason, reason);
  t.is(err.file, typeof file === 'string' ? file : file.name);
  t.is(err.message, `${err.file}: ${err.reason}`);
}

test('a fixture photo decodes to RGB with the shorter side resized to 256', async (t) => {
  const file = flowerImage(1);
  const meta = await sharp(file).metadata();
  const img = await decodeImage(file, { shorterSide: 256 });
  t.is(img.channels, 3);
  t.is(img.format, 'jpeg');
  t.deepEqual([img.sourceWidth, img.sourceHeight], [meta.width, meta.height]);
  t.deepEqual([img.width, img.height], [Math.round((meta.width * 256) / meta.height), 256]);
  t.is(img.data.length, img.width * img.height * 3);
  // Same pixels as an independent sharp resize of the same file.
  const ref = await sharp(file).resize(img.width, img.height, { fit: 'fill' }).raw().toBuffer();
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - img.data[i]));
  t.true(maxDiff <= 1, `max pixel difference ${maxDiff}`);
});

test('bytes decode exactly like the file they came from', async (t) => {
  const file = flowerImage(2);
  const fromFile = await decodeImage(file, { shorterSide: 200 });
  const fromBytes = await decodeImage({ name: 'upload.jpg', bytes: new Uint8Array(await readFile(file)) }, { shorterSide: 200 });
  t.deepEqual([fromBytes.width, fromBytes.height], [fromFile.width, fromFile.height]);
  t.true(Buffer.from(fromBytes.data).equals(Buffer.from(fromFile.data)));
});

test('small images are upscaled so the shorter side reaches the target, portrait keeps its aspect', async (t) => {
  const file = await write('portrait.png', await solid(100, 150, '#204060').png().toBuffer());
  const img = await decodeImage(file, { shorterSide: 256 });
  t.deepEqual([img.width, img.height, img.sourceWidth, img.sourceHeight], [256, 384, 100, 150]);
  t.deepEqual(pixel(img, 128, 200), [0x20, 0x40, 0x60]);
});

test('EXIF orientation is applied before resizing', async (t) => {
  // Stored 60x30 (left half red, right half blue), orientation 6 = rotate 90° clockwise to display.
  const left = await solid(30, 30, '#ff0000').png().toBuffer();
  const stored = await solid(60, 30, '#0000ff')
    .composite([{ input: left, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const img = await decodeImage(await write('rotated.jpg', stored), { shorterSide: 30 });
  t.deepEqual([img.sourceWidth, img.sourceHeight, img.width, img.height], [30, 60, 30, 60]);
  const [r, , b] = pixel(img, 15, 10); // top after rotation = the stored left half
  t.true(r > 200 && b < 50, `top pixel ${pixel(img, 15, 10).join(',')}`);
});

test('grayscale becomes RGB with equal channels', async (t) => {
  const file = await write('gray.png', await solid(40, 40, '#808080').toColourspace('b-w').png().toBuffer());
  t.is((await sharp(file).metadata()).channels, 1);
  const img = await decodeImage(file, { shorterSide: 40 });
  t.deepEqual(pixel(img, 20, 20), [128, 128, 128]);
});

test('CMYK JPEG is converted to sRGB', async (t) => {
  const file = await write('cmyk.jpg', await solid(40, 40, '#ff0000').toColourspace('cmyk').jpeg().toBuffer());
  t.is((await sharp(file).metadata()).space, 'cmyk');
  const img = await decodeImage(file, { shorterSide: 40 });
  const [r, g, b] = pixel(img, 20, 20);
  t.true(r > 200 && g < 40 && b < 60, `got ${[r, g, b].join(',')}`);
});

test('alpha is flattened on white', async (t) => {
  // Left half fully transparent black, right half opaque green.
  const rgba = Buffer.alloc(40 * 40 * 4);
  for (let i = 0; i < 40 * 40; i++) if (i % 40 >= 20) rgba.set([0, 128, 0, 255], i * 4);
  const file = await write(
    'rgba.png',
    await sharp(rgba, { raw: { width: 40, height: 40, channels: 4 } })
      .png()
      .toBuffer(),
  );
  t.is((await sharp(file).metadata()).channels, 4);
  const img = await decodeImage(file, { shorterSide: 40 });
  t.deepEqual(pixel(img, 5, 20), [255, 255, 255]);
  t.deepEqual(pixel(img, 35, 20), [0, 128, 0]);
});

test('16-bit PNG is reduced to 8 bits per channel', async (t) => {
  const file = await write('deep.png', await solid(40, 40, '#336699').toColourspace('rgb16').png().toBuffer());
  t.is((await sharp(file).metadata()).depth, 'ushort');
  const img = await decodeImage(file, { shorterSide: 40 });
  t.deepEqual(pixel(img, 20, 20), [0x33, 0x66, 0x99]);
});

test('palette GIF and palette PNG decode to their colours', async (t) => {
  for (const [name, bytes] of [
    ['palette.gif', await solid(40, 40, '#cc3300').gif().toBuffer()],
    ['palette.png', await solid(40, 40, '#cc3300').png({ palette: true }).toBuffer()],
  ] as const) {
    const img = await decodeImage(await write(name, bytes), { shorterSide: 40 });
    t.deepEqual(pixel(img, 20, 20), [0xcc, 0x33, 0x00], name);
  }
});

test('animated GIF contributes its first frame', async (t) => {
  const frames = [await solid(40, 30, '#ff0000').png().toBuffer(), await solid(40, 30, '#0000ff').png().toBuffer()];
  const file = await write(
    'animated.gif',
    await sharp(frames, { join: { animated: true } })
      .gif()
      .toBuffer(),
  );
  t.is((await sharp(file).metadata()).pages, 2);
  const img = await decodeImage(file, { shorterSide: 30 });
  t.deepEqual([img.width, img.height], [40, 30]);
  t.deepEqual(pixel(img, 20, 15), [255, 0, 0]);
});

test('WebP, TIFF and AVIF are accepted', async (t) => {
  for (const ext of ['webp', 'tiff', 'avif'] as const) {
    t.true(IMAGE_EXTENSIONS.includes(ext));
    const bytes = await solid(40, 40, '#808080')
      .toFormat(ext, ext === 'tiff' ? {} : { lossless: true })
      .toBuffer();
    const img = await decodeImage({ name: `x.${ext}`, bytes }, { shorterSide: 40 });
    const [r, g, b] = pixel(img, 20, 20);
    t.true(Math.abs(r - 128) <= 2 && Math.abs(g - 128) <= 2 && Math.abs(b - 128) <= 2, `${ext}: ${[r, g, b].join(',')}`);
  }
});

test('an empty file is refused', async (t) => {
  await rejectsWith(t, await write('empty.jpg', ''), /^empty file$/);
  await rejectsWith(t, { name: 'empty upload', bytes: new Uint8Array(0) }, /^empty file$/);
});

test('a text file named .jpg is not an image', async (t) => {
  await rejectsWith(t, await write('notes.jpg', 'these are not the pixels you are looking for\n'), /^not an image \(unknown format\)$/);
});

test('a missing file is reported as such', async (t) => {
  await rejectsWith(t, path.join(dir, 'does-not-exist.jpg'), /^file not found$/);
});

test('a truncated JPEG is detected', async (t) => {
  const whole = await readFile(flowerImage(3));
  await rejectsWith(t, await write('truncated.jpg', whole.subarray(0, Math.floor(whole.length / 2))), /^truncated or corrupt JPEG/);
});

test('a JPEG with a corrupt header is refused', async (t) => {
  const bytes = Buffer.from(await readFile(flowerImage(4)));
  bytes.fill(0x42, 2, 400); // keep the SOI marker, destroy the segments after it
  await rejectsWith(t, await write('corrupt.jpg', bytes), /^truncated or corrupt JPEG/);
});

test('a decompression bomb is refused from its header, before decoding', async (t) => {
  const png = Buffer.from(await solid(16, 16, '#000000').png().toBuffer());
  // IHDR is the first chunk: length(4) type(4) at 8, width at 16, height at 20, CRC over type+data at 29.
  png.writeUInt32BE(30000, 16);
  png.writeUInt32BE(30000, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  const header = await sharp(png, { limitInputPixels: false }).metadata();
  t.deepEqual([header.width, header.height], [30000, 30000]);
  await rejectsWith(t, await write('bomb.png', png), /^image too large: 30000x30000 px exceeds the 100 MP limit$/);
});

test('the pixel limit is configurable', async (t) => {
  const err = await t.throwsAsync(decodeImage(flowerImage(1), { shorterSide: 256, maxPixels: 100_000 }), { instanceOf: InputError });
  t.regex(err.reason, /^image too large: \d+x\d+ px exceeds the 0.1 MP limit$/);
});

test('a tiny image is refused', async (t) => {
  await rejectsWith(t, await write('tiny.png', await solid(8, 8, '#ffffff').png().toBuffer()), /^image too small: 8x8 px, minimum 16 px$/);
});

test('a format outside the supported list is refused even when sharp reads it', async (t) => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>';
  await rejectsWith(t, await write('vector.jpg', svg), /^unsupported image format: svg$/);
});

/** A 64x48 HEIC (HEVC in HEIF, as phones write them), made with `heif-enc -q 50` from libheif 1.15. */
const HEIC_64X48 = Buffer.from(
  'AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAa1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA' +
    'AA5waXRtAAAAAAACAAAAEGlkYXQAAAAAAEAAMAAAADhpbG9jAQAAAERAAAIAAQAAAAAAAAHRAAEAAAAAAAAAHAACAAEAAAAAAAAA' +
    'AQAAAAAAAAAIAAAAOGlpbmYAAAAAAAIAAAAVaW5mZQIAAAEAAQAAaHZjMQAAAAAVaW5mZQIAAAAAAgAAZ3JpZAAAAADYaXBycAAA' +
    'ALZpcGNvAAAAdmh2Y0MBA3AAAAAAAAAAAAAe8AD8/fj4AAAPAyAAAQAYQAEMAf//A3AAAAMAkAAAAwAAAwAeugJAIQABACpCAQED' +
    'cAAAAwCQAAADAAADAB6gIIEFlurkprm4EBAwIAAAAwAgAAADACEiAAEABkQBwXPAiQAAABRpc3BlAAAAAAAAAEAAAABAAAAAFGlz' +
    'cGUAAAAAAAAAQAAAADAAAAAQcGl4aQAAAAADCAgIAAAAGmlwbWEAAAAAAAAAAgABAoECAAICA4QAAAAaaXJlZgAAAAAAAAAOZGlt' +
    'ZwACAAEAAQAAACRtZGF0AAAAGCgBrxOA+BDhp//7EqK488Pu7OvzopDPgA==',
  'base64',
);

test("a HEIC photo is refused by name (sharp's prebuilt libvips has no HEVC decoder), an AVIF is read", async (t) => {
  t.is((await sharp(HEIC_64X48).metadata()).compression, 'hevc');
  await rejectsWith(t, await write('phone.heic', HEIC_64X48), /^unsupported image format: HEIC \(HEVC-compressed HEIF\)$/);
  const avif = await decodeImage(await write('photo.avif', await solid(64, 48, '#c81e5a').avif().toBuffer()), { shorterSide: 48 });
  t.deepEqual([avif.format, avif.width, avif.height], ['heif', 64, 48]);
});

test('resizeExact squashes the whole image to the requested size', async (t) => {
  const img = await decodeImage(await write('wide.png', await solid(200, 100, '#102030').png().toBuffer()), { shorterSide: 100 });
  const whole = await resizeExact(img, 224, 224);
  t.deepEqual([whole.width, whole.height, whole.channels, whole.data.length], [224, 224, 3, 224 * 224 * 3]);
  t.deepEqual(pixel(whole, 100, 100), [0x10, 0x20, 0x30]);
});

test('shorterSideSize keeps the aspect ratio', (t) => {
  t.deepEqual(shorterSideSize(689, 500, 256), { width: 353, height: 256 });
  t.deepEqual(shorterSideSize(500, 689, 256), { width: 256, height: 353 });
  t.deepEqual(shorterSideSize(300, 300, 256), { width: 256, height: 256 });
});

test('an extreme aspect ratio is refused from the header with a limit code, before any pixel is decoded', async (t) => {
  const sliver = await sharp({ create: { width: 16, height: 20000, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const err = await t.throwsAsync(decodeImage({ name: 'sliver.png', bytes: sliver }, { shorterSide: 256 }), { instanceOf: InputError });
  t.is(err.code, 'image_limit_exceeded');
  t.is(err.reason, 'extreme aspect ratio: 16x20000 px is 1250:1, limit 20:1');
  const panorama = await sharp({ create: { width: 2000, height: 200, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  t.is((await decodeImage({ name: 'panorama.png', bytes: panorama }, { shorterSide: 256 })).width, 2560, 'a 10:1 panorama is still indexed');
  await t.throwsAsync(decodeImage({ name: 'panorama.png', bytes: panorama }, { shorterSide: 256, maxAspectRatio: 5 }), { message: /is 10:1, limit 5:1/ });
});

test('the chunker refuses an image that would yield more windows than max_chunks', async (t) => {
  const { Chunker } = await import('../src/executors/chunker.js');
  const image = { data: new Uint8Array(256 * 2560 * 3), width: 2560, height: 256, channels: 3 as const, sourceWidth: 2000, sourceHeight: 200 };
  const doc: FlowDoc = { seq: 0, uri: 'panorama.png', image, tags: {} };
  const err = t.throws(() => new Chunker({ window: 224, stride: 112, whole: true, max_chunks: 8 }).process(doc), { instanceOf: InputError });
  t.is(err.code, 'image_limit_exceeded');
  t.regex(err.reason, /too many chunks: 2560x256 px after normalizing gives 44 windows, limit 8/);
  new Chunker({ window: 224, stride: 112, whole: true, max_chunks: 64 }).process(doc);
  t.is(doc.chunks?.length, 45);
  t.deepEqual(doc.chunks?.at(-1), { kind: 'whole', box: { x: 0, y: 0, width: 2560, height: 256 }, image }, 'the whole chunk is all of the image, unresized');
});
