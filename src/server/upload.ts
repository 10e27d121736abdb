/**
 * Getting the query image out of a request (raw `image/*` body or a multipart file part) and
 * checking it from its header alone — real format and pixel count — before it takes a search slot.
 * A malformed multipart form is a 400 `malformed_multipart`, a second file a 400 `too_many_files`.
 */
import type {} from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { FlowerError } from '../errors.js';
import { ACCEPTED_FORMATS } from '../image/index.js';
import { ApiError } from './errors.js';

/** What clients are told they may send. */
export const ACCEPTED_UPLOADS = 'an image/* body (JPEG, PNG, WebP, GIF, TIFF or AVIF), application/octet-stream, or multipart/form-data with one image file';

export interface Upload {
  readonly bytes: Uint8Array;
  /** What the header says; absent when sharp cannot read a size from it (the decoder then refuses the upload). */
  readonly header?: {
    /** Real format, sniffed from the content (sharp's name). */
    readonly format: string;
    readonly width: number;
    readonly height: number;
  };
}

export function uploadTooLarge(maxBytes: number): ApiError {
  return new ApiError('upload_too_large', `upload larger than the server's limit of ${maxBytes} bytes; send a smaller image`);
}

/**
 * The uploaded image of a /search request. Fastify has already read raw bodies (bounded by
 * `bodyLimit`); multipart files are read here, bounded by `maxBytes`.
 */
export async function readUpload(request: FastifyRequest, maxBytes: number): Promise<Uint8Array> {
  if (request.isMultipart()) return readMultipartFile(request, maxBytes).catch((err: unknown) => Promise.reject(multipartError(err, maxBytes)));
  const body = request.body;
  if (!(body instanceof Uint8Array) || body.byteLength === 0) {
    throw new ApiError('empty_body', `no image in the request body: send ${ACCEPTED_UPLOADS}`);
  }
  return body;
}

/** The one file of a multipart form. Every part is read to its end: a second file is refused, not ignored, and a form cut short is malformed. */
async function readMultipartFile(request: FastifyRequest, maxBytes: number): Promise<Uint8Array> {
  let bytes: Uint8Array | undefined;
  for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1, fields: 8, parts: 9 } })) {
    if (part.type !== 'file') continue;
    const declared = part.mimetype.split(';', 1)[0].trim().toLowerCase();
    if (!declared.startsWith('image/') && declared !== 'application/octet-stream') {
      part.file.resume();
      throw new ApiError('unsupported_media_type', `file part "${part.fieldname}" is ${declared}: send ${ACCEPTED_UPLOADS}`);
    }
    bytes = await part.toBuffer();
    // toBuffer() misses a truncation that happens on the file's last chunk; the flag does not.
    if (part.file.truncated) throw uploadTooLarge(maxBytes);
    if (bytes.byteLength === 0) throw new ApiError('empty_body', `file part "${part.fieldname}" is empty`);
  }
  if (!bytes) throw new ApiError('empty_body', `multipart request has no file part: send ${ACCEPTED_UPLOADS}`);
  return bytes;
}

/** A multipart parser's error in the API's vocabulary: what is not a limit is a malformed form (400, never 500). */
function multipartError(err: unknown, maxBytes: number): FlowerError {
  if (err instanceof FlowerError) return err;
  switch ((err as { code?: string }).code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return uploadTooLarge(maxBytes);
    case 'FST_FILES_LIMIT':
      return new ApiError('too_many_files', 'multipart request has more than one file: send one image file');
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ApiError('too_many_parts', 'multipart request has too many parts: send one image file');
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new ApiError('malformed_multipart', `malformed multipart/form-data request (${reason}): send ${ACCEPTED_UPLOADS}`, {}, { cause: err });
}

/**
 * Header-only checks, from the server's one read of the header: the real format must be an accepted
 * one (415) and the pixel count within `maxPixels` (422: the upload is within the byte limit, it is
 * its content that cannot be processed). Bytes sharp reads no size from are not judged here: the
 * query flow's decoder refuses them with the image module's reason (422), without a second probe.
 */
export async function probeUpload(bytes: Uint8Array, maxPixels: number): Promise<Upload> {
  const meta = await sharp(bytes, { pages: 1, limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
  const format = meta?.format;
  if (format && !ACCEPTED_FORMATS.has(format)) throw new ApiError('unsupported_media_type', `uploaded content is ${format}: send ${ACCEPTED_UPLOADS}`);
  const width = meta?.autoOrient?.width ?? meta?.width;
  const height = meta?.autoOrient?.height ?? meta?.height;
  if (!format || !width || !height) return { bytes };
  if (width * height > maxPixels) {
    throw new ApiError('too_many_pixels', `image is ${width}x${height} = ${width * height} pixels, more than the server's limit of ${maxPixels}`);
  }
  return { bytes, header: { format, width, height } };
}
