/**
 * The query gateway: a fastify app around an already-open searcher. `createServer` sets up what
 * every route shares (body parsing, limits, timeouts, the Host check, errors, hooks, queue and
 * metrics) and registers the route modules in routes/; `serve.ts` opens the index and listens.
 */
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Socket } from 'node:net';
import { FlowerError, InputError } from '../errors.js';
import { limitConnectionsPerClient } from './connections.js';
import { ApiError, errorBody, httpStatusOf, rawResponse } from './errors.js';
import { isAllowedHost, LOOPBACK_HOSTS } from './hosts.js';
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
  /** Host header names (no port) the server answers, against DNS rebinding; others get 421. '*': any. Default: the loopback names. */
  readonly allowedHosts?: readonly string[];
}

export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const limits = pickLimits(options);
  const { searcher } = options;
  const queue = new SearchQueue(limits);
  const metrics = new ServerMetrics({
    queueWaiting: () => queue.waiting,
    searchesInFlight: () => queue.inFlight,
    uploadsInProgress: () => queue.uploading,
    indexDocs: () => searcher.workspace.docCount,
    indexChunks: () => searcher.workspace.chunkCount,
  });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limits.maxUploadBytes,
    // Node checks header and request timeouts every `connectionsCheckingInterval` (30 s unless set when
    // its server is made), so all three go to the constructor; fastify's own setting alone came 30 s late.
    http: { headersTimeout: headersTimeoutOf(limits), requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: timeoutCheckInterval(limits) },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Unknown query keys are refused (400 naming the key), not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // Timeouts and unparsable requests are answered on the socket, before any route: in the API's error format.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const error = clientError(err, limits);
      metrics.observeRefusedConnection(error.code);
      if (socket.writable) socket.write(rawResponse(error));
      socket.destroy();
    },
  });
  const isRefusedConnection =
    limits.maxConnectionsPerClient > 0
      ? limitConnectionsPerClient(app.server, limits.maxConnectionsPerClient, (address) => {
          metrics.observeRefusedConnection('too_many_connections');
          return rawResponse(new ApiError('too_many_connections', `${address} already has ${limits.maxConnectionsPerClient} connections open to this server; reuse or close them`));
        })
      : () => false;
  const allowedHosts = new Set((options.allowedHosts ?? LOOPBACK_HOSTS).map((name) => name.toLowerCase()));
  // No JSON or text bodies anywhere: anything but an image or multipart upload is a 415.
  app.removeAllContentTypeParsers();
  await app.register(fastifyMultipart, { limits: { fileSize: limits.maxUploadBytes, files: 1 } });
  // Raw uploads: any declared image/* or octet-stream; the real format is sniffed from the bytes.
  const keepBytes = { parseAs: 'buffer', bodyLimit: limits.maxUploadBytes } as const;
  // Matched against the parsed media type, parameters after it (`image/jpeg; charset=x`) or not.
  app.addContentTypeParser(/^image\/[\w.+-]+(?:;|$)/i, keepBytes, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', keepBytes, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, request, reply) => {
    const error = toFlowerError(err, limits, request);
    const status = httpStatusOf(error);
    if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
    reply
      .code(status)
      .headers(error instanceof ApiError ? error.headers : {})
      .send(errorBody(error));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
    reply.code(httpStatusOf(error)).send(errorBody(error));
  });
  // First of all hooks: a connection refused on its socket is not served, and neither is a Host this server does not answer for.
  app.addHook('onRequest', async (request, reply) => {
    if (isRefusedConnection(request.raw.socket)) return reply.hijack();
    if (!isAllowedHost(request.headers.host, allowedHosts)) {
      const named = request.headers.host === undefined ? 'no Host header' : `Host "${request.headers.host.slice(0, 100)}"`;
      throw new ApiError('host_not_allowed', `this server does not answer for ${named} (DNS rebinding protection); allowed: ${[...allowedHosts].join(', ')} (add names with --allowed-hosts)`);
    }
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
function toFlowerError(err: unknown, limits: ServerLimits, request: FastifyRequest): FlowerError {
  const contentType = request.headers['content-type'];
  // The searcher's InputError is about the uploaded query image: one it cannot decode, or one past the flow's limits.
  if (err instanceof InputError) {
    return new ApiError(err.code === 'image_limit_exceeded' ? err.code : 'undecodable_image', `cannot use the uploaded image: ${err.reason}`, {}, { cause: err });
  }
  if (err instanceof FlowerError) return err;
  const e = err as Partial<FastifyError>;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return uploadTooLarge(limits.maxUploadBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', `unsupported content type ${contentType ?? '(none)'}: send ${ACCEPTED_UPLOADS}`);
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new ApiError('unsupported_media_type', `missing content type: send ${ACCEPTED_UPLOADS}`);
  }
  if (e.validation) return new ApiError('invalid_request', validationMessage(e, request));
  const status = e.statusCode;
  if (status && status >= 400 && status < 500) return new ApiError('bad_request', e.message ?? 'bad request');
  return new ApiError('internal_error', 'internal server error (see the server log)');
}

/** A schema failure as a client can act on it: an unknown key is named, with the keys there are. */
function validationMessage(e: Partial<FastifyError>, request: FastifyRequest): string {
  const unknown = e.validation?.find((failure) => failure.keyword === 'additionalProperties');
  if (!unknown || !e.validationContext) return e.message ?? 'invalid request';
  const schema = request.routeOptions.schema?.[e.validationContext] as { properties?: Record<string, unknown> } | undefined;
  const known = Object.keys(schema?.properties ?? {});
  const where = e.validationContext === 'querystring' ? 'query' : e.validationContext;
  return `unknown ${where} parameter "${String(unknown.params.additionalProperty)}"${known.length ? `; known: ${known.join(', ')}` : ''}`;
}

/** A socket-level client error (node's HTTP parser or its timeouts) in the API's vocabulary. */
function clientError(err: NodeJS.ErrnoException, limits: ServerLimits): ApiError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError('request_timeout', `request not received in time: headers within ${headersTimeoutOf(limits)} ms, the whole request within ${limits.requestTimeoutMs} ms`);
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError('headers_too_large', 'request headers larger than the server accepts');
    default:
      return new ApiError('bad_request', `malformed HTTP request (${err.code ?? err.message})`);
  }
}

/** Node refuses a headers timeout longer than the request timeout: the headers are part of the request. */
function headersTimeoutOf(limits: ServerLimits): number {
  return limits.requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) : limits.headersTimeoutMs;
}

/** How often node checks those timeouts: a quarter of the shorter one, within 50 ms..1 s (a timeout fires up to this late). */
function timeoutCheckInterval(limits: ServerLimits): number {
  const timeouts = [headersTimeoutOf(limits), limits.requestTimeoutMs].filter((ms) => ms > 0);
  return Math.min(1000, Math.max(50, Math.min(4000, ...timeouts) / 4));
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
