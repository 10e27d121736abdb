/**
 * Getting the query image out of a request (raw `image/*` body or a multipart file part) and
 * checking it from its header alone — real format and pixel count — before it takes a search slot.
 */
import type {} from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { ACCEPTED_FORMATS, decodeImage } from '../image/index.js';
import { ApiError } from './errors.js';


/** What clients are told they may send. */
export const ACCEPTED_UPLOADS = 'an image/* body (JPEG, PNG, WebP, GIF, TIFF or AVIF), application/octet-stream, or multipart/form-data with one image file';

export interface Upload {
  readonly bytes: Uint8Array;
  /** Real format, sniffed from the content (sharp's name). */
  readonly format: string;
  readonly width: number;
  readonly height: number;
}

export function uploadTooLarge(maxBytes: number): ApiError {
  return new ApiError('upload_too_large', `upload larger than the server's limit of ${maxBytes} bytes; send a smaller image`);
}

/**
 * The uploaded image of a /search request. Fastify has already read raw bodies (bounded by
 * `bodyLimit`); multipart files are read here, bounded by `maxBytes`.
 */
export async function readUpload(request: FastifyRequest, maxBytes: number): Promise<Uint8Array> {
  if (request.isMultipart()) {
    const part = await request.file({ limits: { fileSize: maxBytes, files: 1, fields: 8, parts: 9 } });
    if (!part) throw new ApiError('empty_body', `multipart request has no file part: send ${ACCEPTED_UPLOADS}`);
    const declared = part.mimetype.toLowerCase();
    if (!declared.startsWith('image/') && declared !== 'application/octet-stream') {
      part.file.resume();
      throw new ApiError('unsupported_media_type', `file part "${part.fieldname}" is ${declared}: send ${ACCEPTED_UPLOADS}`);
    }
    const bytes = await part.toBuffer();
    // toBuffer() misses a truncation that happens on the file's last chunk; the flag does not.
    if (part.file.truncated) throw uploadTooLarge(maxBytes);
    if (bytes.byteLength === 0) throw new ApiError('empty_body', `file part "${part.fieldname}" is empty`);
    return bytes;
  }
  const body = request.body;
  if (!(body instanceof Uint8Array) || body.byteLength === 0) {
    throw new ApiError('empty_body', `no image in the request body: send ${ACCEPTED_UPLOADS}`);
  }
  return body;
}

/**
 * Header-only checks: the real format must be an accepted one (415) and the pixel count within
 * `maxPixels` (422: the upload is within the byte limit, it is its content that cannot be
 * processed). Data sharp cannot even identify is handed to the image module for its reason (422).
 */
export async function probeUpload(bytes: Uint8Array, maxPixels: number): Promise<Upload> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { pages: 1, limitInputPixels: false }).metadata();
  } catch {
    throw await undecodable(bytes, maxPixels);
  }
  const format = meta.format;
  if (!format || !ACCEPTED_FORMATS.has(format)) {
    throw new ApiError('unsupported_media_type', `uploaded content is ${format ?? 'of an unknown format'}: send ${ACCEPTED_UPLOADS}`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw await undecodable(bytes, maxPixels);
  if (width * height > maxPixels) {
    throw new ApiError('too_many_pixels', `image is ${width}x${height} = ${width * height} pixels, more than the server's limit of ${maxPixels}`);
  }
  return { bytes, format, width, height };
}

/** The image module's own reason for refusing `bytes`, as a 422. */
async function undecodable(bytes: Uint8Array, maxPixels: number): Promise<ApiError> {
  try {
    await decodeImage({ name: 'upload', bytes }, { shorterSide: 1, maxPixels });
  } catch (err) {
    if (err instanceof InputError) return new ApiError('undecodable_image', `cannot decode the uploaded image: ${err.reason}`);
    throw err;
  }
  return new ApiError('undecodable_image', 'cannot decode the uploaded image: its header has no image size');
}
