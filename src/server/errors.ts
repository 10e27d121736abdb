/**
 * Every error the server answers with is a `FlowerError`: the server's own refusals are `ApiError`s,
 * domain errors (an undecodable query image, a store gone away) arrive from the searcher. Its `code`
 * picks the HTTP status from one table; the body is `{ "error": { "code", "message" } }`.
 */
import { FlowerError, type ErrorCode } from '../errors.js';

export class ApiError extends FlowerError {
  constructor(
    code: ErrorCode,
    message: string,
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(code, message, options);
  }
}

/** The HTTP status of every error code: the one place the server decides what an error means to a client. */
const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  empty_body: 400,
  invalid_request: 400,
  bad_request: 400,
  not_found: 404,
  doc_not_found: 404,
  image_missing: 404,
  upload_too_large: 413,
  too_many_parts: 413,
  unsupported_media_type: 415,
  // The request is within the byte limit; it is its content that cannot be processed.
  too_many_pixels: 422,
  undecodable_image: 422,
  invalid_input: 422,
  image_limit_exceeded: 422,
  skipped: 422,
  queue_full: 429,
  // nginx's "client closed request": logged, never seen by the client, which has left.
  client_closed: 499,
  internal_error: 500,
  invalid_flow: 500,
  incompatible_index: 500,
  no_network: 502,
  checksum_mismatch: 502,
  search_timeout: 503,
  no_index: 503,
  index_locked: 503,
  store_unavailable: 503,
};

export function httpStatusOf(err: FlowerError): number {
  return HTTP_STATUS[err.code];
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(err: FlowerError): ErrorBody {
  return { error: { code: err.code, message: err.message } };
}
