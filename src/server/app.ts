/**
 * The query gateway: a fastify app around an already-open searcher. `createServer` wires the
 * routes, limits, queue and metrics; `cli.ts` opens the index, listens and handles signals.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { FlowerError, InputError } from '../errors.js';
import type { Box } from '../kernels/types.js';
import { ApiError, errorBody, httpStatusOf } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { FAVICON_SVG, PAGE_CSP, searchPage } from './page/html.js';
import { SearchQueue, type Ticket } from './queue.js';
import { ThumbnailCache } from './thumbs.js';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
import type { SearchBackend, ServedDoc } from './types.js';
import { ACCEPTED_UPLOADS, probeUpload, readUpload, uploadTooLarge } from './upload.js';

export interface ServerOptions extends Partial<ServerLimits> {
  /** The open index; the server never closes it (its opener does, after `app.close()`). */
  readonly searcher: SearchBackend;
  /** Fastify logger setting (off by default). */
  readonly logger?: FastifyServerOptions['logger'];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The /search request's place in the queue, and a signal that fires if its client goes away. */
    searchSlot: { ticket: Ticket; clientGone: AbortSignal } | null;
  }
}

const docParams = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } },
  required: ['id'],
} as const;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp',
  '.gif': 'image/gif', '.tif': 'image/tiff', '.tiff': 'image/tiff', '.avif': 'image/avif',
};

/** The page script, compiled by tsc beside this file (dist/src/server/page/app.js). */
const PAGE_SCRIPT = new URL('./page/app.js', import.meta.url);

export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const limits = pickLimits(options);
  const { searcher } = options;
  const queue = new SearchQueue(limits);
  const thumbs = new ThumbnailCache(limits.thumbSize, limits.thumbCacheBytes);
  const metrics = new ServerMetrics({
    queueWaiting: () => queue.waiting,
    searchesInFlight: () => queue.inFlight,
    indexDocs: () => searcher.workspace.docCount,
    indexChunks: () => searcher.workspace.chunkCount,
  });
  const pageScript = await readFile(PAGE_SCRIPT, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${PAGE_SCRIPT.pathname}: search page script missing (${err.code ?? err.message}); run \`npm run build\``);
  });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limits.maxUploadBytes,
    requestTimeout: limits.requestTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.decorateRequest('searchSlot', null);
  // No JSON or text bodies anywhere: anything but an image or multipart upload is a 415.
  app.removeAllContentTypeParsers();
  await app.register(fastifyMultipart, { limits: { fileSize: limits.maxUploadBytes, files: 1 } });
  // Raw uploads: any declared image/* or octet-stream; the real format is sniffed from the bytes.
  const keepBytes = { parseAs: 'buffer', bodyLimit: limits.maxUploadBytes } as const;
  app.addContentTypeParser(/^image\/[\w.+-]+$/i, keepBytes, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', keepBytes, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, request, reply) => {
    const error = toFlowerError(err, limits, request.headers['content-type']);
    const status = httpStatusOf(error);
    if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
    reply.code(status).headers(error instanceof ApiError ? error.headers : {}).send(errorBody(error));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
    reply.code(httpStatusOf(error)).send(errorBody(error));
  });
  // While closing, answer in-flight requests with Connection: close, so their keep-alive
  // sockets do not hold the shutdown open once the last response is out.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    // Browsers must take image and JSON responses for what their content type says.
    reply.header('x-content-type-options', 'nosniff');
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').header('content-security-policy', PAGE_CSP).send(searchPage()));
  app.get('/favicon.svg', async (_request, reply) => reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(FAVICON_SVG));
  app.get('/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(pageScript));

  app.get('/healthz', async () => ({
    status: 'ok',
    docs: searcher.workspace.docCount,
    chunks: searcher.workspace.chunkCount,
    queue: { inFlight: queue.inFlight, waiting: queue.waiting, maxConcurrent: limits.maxConcurrent, maxWaiting: limits.maxWaiting },
  }));

  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));

  app.post<{ Querystring: { top: number; minScore?: number; mode?: 'bimatch' | 'whole' } }>('/search', {
    schema: {
      querystring: {
        type: 'object',
        properties: {
          top: { type: 'integer', minimum: 1, maximum: limits.maxTop, default: 10 },
          minScore: { type: 'number', minimum: -1, maximum: 1 },
          mode: { type: 'string', enum: ['bimatch', 'whole'] },
        },
        additionalProperties: false,
      },
    },
    // Admit or refuse before the body is read: a full server does not take the upload.
    onRequest: async (request, reply) => {
      const ticket = queue.tryAdmit();
      if (!ticket) {
        metrics.observeRejection();
        const retryAfter = String(queue.retryAfterSeconds());
        throw new ApiError('queue_full', `server busy: ${limits.maxConcurrent} searches running and ${limits.maxWaiting} waiting; retry in ${retryAfter} s`, { 'retry-after': retryAfter });
      }
      // Listening from the start: a client that leaves during its upload or probe is not searched for.
      const clientGone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) clientGone.abort(new ApiError('client_closed', 'the client went away before the answer'));
        ticket.release();
      });
      request.searchSlot = { ticket, clientGone: clientGone.signal };
    },
  }, async (request) => {
    const started = performance.now();
    const upload = await probeUpload(await readUpload(request, limits.maxUploadBytes), limits.maxPixels);
    const outcome = await runWithDeadline(request.searchSlot!, limits.searchTimeoutMs, queue, (queueMs) => {
      const { top, minScore, mode } = request.query;
      return searcher.search(upload.bytes, { top, minScore, mode }).then((result) => ({ result, queueMs }));
    });
    const timings = { queue: outcome.queueMs, ...outcome.result.timings, total: performance.now() - started };
    metrics.observeSearch(outcome.result.timings);
    return {
      query: { bytes: upload.bytes.byteLength, ...upload.header },
      results: outcome.result.results.map((hit) => ({ ...hit, area: areaOf(hit.box, searcher.workspace.doc(hit.docId)), ...docLinks(hit.docId) })),
      timings: roundTimings(timings),
    };
  });

  app.get<{ Params: { id: number } }>('/docs/:id', { schema: { params: docParams } }, async (request) => {
    const doc = findDoc(searcher, request.params.id);
    return { id: doc.id, path: doc.path, label: doc.label, width: doc.width, height: doc.height, bytes: doc.bytes, sha256: doc.sha256, chunkCount: doc.chunkCount, ...docLinks(doc.id) };
  });

  // Image bytes come only from the path the index recorded for a numeric id.
  app.get<{ Params: { id: number } }>('/docs/:id/image', { schema: { params: docParams } }, async (request, reply) => {
    const doc = findDoc(searcher, request.params.id);
    if (sendNotModified(request, reply, doc)) return reply;
    const stream = createReadStream(doc.path);
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject)).catch(() => {
      throw new ApiError('image_missing', `the image file of doc ${doc.id} is no longer on disk`);
    });
    return reply.type(CONTENT_TYPES[path.extname(doc.path).toLowerCase()] ?? 'application/octet-stream').send(stream);
  });

  app.get<{ Params: { id: number } }>('/docs/:id/thumb', { schema: { params: docParams } }, async (request, reply) => {
    const doc = findDoc(searcher, request.params.id);
    if (sendNotModified(request, reply, doc)) return reply;
    const thumb = await thumbs.get(doc.sha256, doc.path).catch(() => {
      throw new ApiError('image_missing', `cannot make a thumbnail of doc ${doc.id}: its image file is missing or unreadable`);
    });
    return reply.type(thumb.contentType).send(thumb.bytes);
  });

  await app.ready();
  return app;
}

function findDoc(searcher: SearchBackend, id: number): ServedDoc {
  const doc = searcher.workspace.doc(id);
  if (!doc) throw new ApiError('doc_not_found', `no doc with id ${id} (the index has ${searcher.workspace.docCount} docs, ids 0..${searcher.workspace.docCount - 1})`);
  return doc;
}

/** The best-match box as fractions of the doc's image (what the page overlays on a thumbnail), clamped to it. */
function areaOf(box: Box, doc: ServedDoc | undefined): { left: number; top: number; width: number; height: number } | undefined {
  if (!doc || !(doc.width > 0 && doc.height > 0)) return undefined;
  // Floor the start and the end separately so rounding never pushes the area past the image.
  const fraction = (value: number, of: number): number => Math.floor(Math.min(1, Math.max(0, value / of)) * 10_000) / 10_000;
  const left = fraction(box.x, doc.width);
  const top = fraction(box.y, doc.height);
  const width = Math.round((fraction(box.x + box.width, doc.width) - left) * 10_000) / 10_000;
  const height = Math.round((fraction(box.y + box.height, doc.height) - top) * 10_000) / 10_000;
  return { left, top, width, height };
}

function docLinks(id: number): { doc: string; image: string; thumb: string } {
  return { doc: `/docs/${id}`, image: `/docs/${id}/image`, thumb: `/docs/${id}/thumb` };
}

/** Indexed files are identified by content hash, so the hash is a strong validator. */
function sendNotModified(request: FastifyRequest, reply: FastifyReply, doc: ServedDoc): boolean {
  const etag = `"${doc.sha256}"`;
  reply.header('etag', etag).header('cache-control', 'private, max-age=300');
  if (request.headers['if-none-match'] !== etag) return false;
  reply.code(304).send();
  return true;
}

/**
 * Wait for a search slot and run the search, answering 503 + Retry-After if both together take
 * longer than `timeoutMs`; leaving the queue early when the client disconnects. A search already
 * running cannot be interrupted: it finishes and keeps its slot until then, so the bound holds.
 */
async function runWithDeadline<T>(slot: { ticket: Ticket; clientGone: AbortSignal }, timeoutMs: number, queue: SearchQueue, search: (queueMs: number) => Promise<T>): Promise<T> {
  const timedOut = new AbortController();
  const queued = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const retryAfter = String(queue.retryAfterSeconds());
      const error = new ApiError('search_timeout', `search not finished within ${timeoutMs} ms; the server is overloaded, retry in ${retryAfter} s`, { 'retry-after': retryAfter });
      timedOut.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    const abandoned = AbortSignal.any([slot.clientGone, timedOut.signal]);
    return await Promise.race([slot.ticket.run(() => search(performance.now() - queued), abandoned), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Any error a route or fastify raised, in the API's vocabulary; anything unforeseen is a 500 without internals. */
function toFlowerError(err: unknown, limits: ServerLimits, contentType: string | undefined): FlowerError {
  // The searcher's InputError is about the uploaded query image: one it cannot decode, or one past the flow's limits.
  if (err instanceof InputError) {
    return new ApiError(err.code === 'image_limit_exceeded' ? err.code : 'undecodable_image', `cannot use the uploaded image: ${err.reason}`, {}, { cause: err });
  }
  if (err instanceof FlowerError) return err;
  const e = err as { code?: string; statusCode?: number; validation?: unknown; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return uploadTooLarge(limits.maxUploadBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', `unsupported content type ${contentType ?? '(none)'}: send ${ACCEPTED_UPLOADS}`);
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new ApiError('unsupported_media_type', `missing content type: send ${ACCEPTED_UPLOADS}`);
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ApiError('too_many_parts', 'multipart request has too many parts: send one image file');
  }
  if (e.validation) return new ApiError('invalid_request', e.message ?? 'invalid request');
  const status = e.statusCode;
  if (status && status >= 400 && status < 500) return new ApiError('bad_request', e.message ?? 'bad request');
  return new ApiError('internal_error', 'internal server error (see the server log)');
}

function roundTimings(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([stage, ms]) => [stage, Math.round(ms * 100) / 100]));
}

/** The defaults, overridden by whichever limits `options` sets. */
function pickLimits(options: Partial<ServerLimits>): ServerLimits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(DEFAULT_LIMITS) as (keyof ServerLimits)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`server limit ${name} must be a finite number ≥ 0, got ${value}`);
    limits[name] = value;
  }
  return limits as unknown as ServerLimits;
}
