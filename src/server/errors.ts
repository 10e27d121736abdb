/**
 * Every error the server answers with is an `ApiError`: an HTTP status, a stable machine-readable
 * code and a message a person can act on. The error handler turns them into
 * `{ "error": { "code", "message" } }` bodies; anything else becomes a 500 without internals.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
