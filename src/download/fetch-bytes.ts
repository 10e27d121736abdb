/** One image's bytes over HTTP(S), in memory: what the index flow's loader reads for a doc whose path is a URL. */

export interface FetchBytesOptions {
  /** Refuse a body larger than this (checked against Content-Length, then while reading). */
  maxBytes: number;
  /** Give up after this long in all (default 60 s). */
  timeoutMs?: number;
}

/** The body of a 200 answer; otherwise an Error whose message is the reason (`HTTP 404`, `too large: …`, the network error). */
export async function fetchBytes(url: string, opts: FetchBytesOptions): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(cause?.code ?? cause?.message ?? (err as Error).message);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > opts.maxBytes) {
    await response.body?.cancel();
    throw new Error(`too large: ${declared} bytes, limit ${opts.maxBytes}`);
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
    size += part.byteLength;
    if (size > opts.maxBytes) throw new Error(`too large: over ${opts.maxBytes} bytes`);
    parts.push(part);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}
