/**
 * The query gateway: a fastify app around an already-open searcher. `createServer` sets up what
 * every route shares (body parsing, limits, errors, hooks, queue and metrics) and registers the
 * route modules in routes/; `serve.ts` opens the index and listens.
 */
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { FlowerError, InputError } from '../errors.js';
import { ApiError, errorBody, httpStatusOf } from './errors.js';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
import { ServerMetrics } from './metrics.js';
import { SearchQueue } from './queue.js';
import { docRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { pageRoutes } from './routes/page.js';
import { searchRoutes } from './routes/search.js';
import { similarRoutes } from './routes/similar.js';
import { ThumbnailCache } from './thumbs.js';
import type { SearchBackend } from './types.js';
import { ACCEPTED_UPLOADS, uploadTooLarge } from './upload.js';

export interface ServerOptions extends Partial<ServerLimits> {
  /** The open index; the server never closes it (its opener does, after `app.close()`). */
  readonly searcher: SearchBackend;
  /** Fastify logger setting (off by default). */
  readonly logger?: FastifyServerOptions['logger'];
}

export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const limits = pickLimits(options);
  const { searcher } = options;
  const queue = new SearchQueue(limits);
  const metrics = new ServerMetrics({
    queueWaiting: () => queue.waiting,
    searchesInFlight: () => queue.inFlight,
    indexDocs: () => searcher.workspace.docCount,
    indexChunks: () => searcher.workspace.chunkCount,
  });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limits.maxUploadBytes,
    requestTimeout: limits.requestTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
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
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', async (_request, reply) => {
    // Browsers must take image and JSON responses for what their content type says.
    reply.header('x-content-type-options', 'nosniff');
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  await app.register(pageRoutes);
  await app.register(healthRoutes, { searcher, queue, metrics, limits });
  await app.register(searchRoutes, { searcher, queue, metrics, limits });
  await app.register(similarRoutes, { searcher, maxTop: limits.maxTop });
  await app.register(docRoutes, { searcher, thumbs: new ThumbnailCache(limits.thumbSize, limits.thumbCacheBytes) });
  await app.ready();
  return app;
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
