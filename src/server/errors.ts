/**
 * Every error the server answers with is a `FlowerError`: the server's own refusals are `ApiError`s,
 * domain errors (an undecodable query image, a store gone away) arrive from the searcher. Its `code`
 * picks the HTTP status from one table; the body is `{ "error": { "code", "message" } }`, also for
 * the refusals written straight to a socket, before any request exists (`rawResponse`).
 */
import { STATUS_CODES } from 'node:http';
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
  malformed_multipart: 400,
  too_many_files: 400,
  not_found: 404,
  doc_not_found: 404,
  image_missing: 404,
  request_timeout: 408,
  // The file at the indexed path is not the indexed image any more (swapped, replaced, not a file).
  image_changed: 409,
  upload_too_large: 413,
  too_many_parts: 413,
  unsupported_media_type: 415,
  // A Host this server does not answer for (DNS rebinding, or a name missing from --allowed-hosts).
  host_not_allowed: 421,
  // The request is within the byte limit; it is its content that cannot be processed.
  too_many_pixels: 422,
  undecodable_image: 422,
  invalid_input: 422,
  image_limit_exceeded: 422,
  skipped: 422,
  queue_full: 429,
  too_many_connections: 429,
  headers_too_large: 431,
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

/** A whole HTTP/1.1 response for `err` that closes the connection: for refusals made on the socket itself. */
export function rawResponse(err: FlowerError): string {
  const status = httpStatusOf(err);
  const body = JSON.stringify(errorBody(err));
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
