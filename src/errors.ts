/**
 * Every error flower-native raises on purpose is a `FlowerError`: a message a person can act on and
 * a stable `code` a program can branch on. The CLI maps codes to exit codes and the server to HTTP
 * statuses, each in one table; callers test with `instanceof`, never by name. Argument mistakes in
 * the low-level kernels stay `TypeError` / `RangeError`, as in Node's own APIs.
 */

export type ErrorCode =
  | 'invalid_input'
  | 'image_limit_exceeded'
  | 'skipped'
  | 'invalid_flow'
  | 'no_index'
  | 'incompatible_index'
  | 'index_locked'
  | 'no_network'
  | 'checksum_mismatch'
  | 'store_unavailable'
  // The HTTP API's own refusals (src/server/errors.ts gives each its status).
  | 'empty_body'
  | 'invalid_request'
  | 'bad_request'
  | 'not_found'
  | 'doc_not_found'
  | 'image_missing'
  | 'upload_too_large'
  | 'too_many_parts'
  | 'unsupported_media_type'
  | 'malformed_multipart'
  | 'too_many_files'
  | 'request_timeout'
  | 'headers_too_large'
  | 'too_many_connections'
  | 'host_not_allowed'
  | 'image_changed'
  | 'too_many_pixels'
  | 'undecodable_image'
  | 'queue_full'
  | 'client_closed'
  | 'search_timeout'
  | 'internal_error';

export class FlowerError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

type InputErrorCode = 'invalid_input' | 'image_limit_exceeded';

/**
 * A file that cannot be indexed or queried; `reason` is short and human-readable. `image_limit_exceeded`:
 * a usable image that would cost more work than the flow's limits allow.
 */
export class InputError extends FlowerError {
  declare readonly code: InputErrorCode;

  constructor(
    readonly file: string,
    readonly reason: string,
    code: InputErrorCode = 'invalid_input',
  ) {
    super(code, `${file}: ${reason}`);
  }
}

/** Thrown by an executor to drop a document; `reason` lands in the run summary. */
export class SkipDoc extends FlowerError {
  constructor(
    readonly file: string,
    readonly reason: string,
    /** Expected skips (already indexed) are counted, not listed as problems. */
    readonly expected = false,
    options?: ErrorOptions,
  ) {
    super('skipped', `${file}: ${reason}`, options);
  }
}

/** A flow file problem, with the file and line in the message. */
export class FlowError extends FlowerError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly problem: string,
  ) {
    super('invalid_flow', line === undefined ? `${file}: ${problem}` : `${file}:${line}: ${problem}`);
  }
}

/** The store has no index (or an unreadable one). */
export class NoIndexError extends FlowerError {
  constructor(
    readonly dir: string,
    message: string,
  ) {
    super('no_index', message);
  }
}

/** The store was built by another model, chunking or format version. */
export class IncompatibleIndexError extends FlowerError {
  constructor(
    readonly dir: string,
    readonly differences: string[],
  ) {
    super(
      'incompatible_index',
      `index at ${dir} was built differently from this run:\n  - ${differences.join('\n  - ')}\n` +
        `re-index it with \`flower-native index --rebuild --workspace ${dir}\`, or use the model and flow it was built with`,
    );
  }
}

/** Another live process is writing the store. */
export class IndexLockedError extends FlowerError {
  constructor(
    readonly dir: string,
    message: string,
  ) {
    super('index_locked', message);
  }
}

/** The server could not be reached at all (offline, DNS, refused, silent). */
export class NoNetworkError extends FlowerError {
  constructor(
    readonly url: string,
    readonly reason: string,
    hint: string,
  ) {
    super('no_network', `no network: cannot reach ${url} (${reason}): ${hint}`);
  }
}

/** The downloaded bytes are not the expected file; the download was deleted. */
export class ChecksumError extends FlowerError {
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('checksum_mismatch', `checksum mismatch for ${url}: expected ${expected}, got ${actual}; the download was deleted, run again to retry (or check the address)`);
  }
}

/** A database store that cannot be used: unreachable, refused credentials, missing extension. */
export class StoreUnavailableError extends FlowerError {
  constructor(
    readonly store: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super('store_unavailable', message, options);
  }
}
