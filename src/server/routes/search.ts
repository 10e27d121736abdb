/**
 * POST /search: admitted to the queue (or refused with 429) before the body is read, the upload
 * checked from its header, then searched within the deadline (503 beyond).
 */
import type { FastifyPluginCallback } from 'fastify';
import type { Box } from '../../kernels/types.js';
import { RANK_MODES, type RankMode } from '../../search/index.js';
import { ApiError } from '../errors.js';
import type { ServerLimits } from '../limits.js';
import type { ServerMetrics } from '../metrics.js';
import type { SearchQueue, Ticket } from '../queue.js';
import type { SearchBackend, ServedDoc } from '../types.js';
import { probeUpload, readUpload } from '../upload.js';
import { docLinks } from './docs.js';

export interface SearchRouteOptions {
  readonly searcher: SearchBackend;
  readonly queue: SearchQueue;
  readonly metrics: ServerMetrics;
  readonly limits: ServerLimits;
}

/** A /search request's place in the queue, and a signal that fires if its client goes away. */
interface SearchSlot {
  readonly ticket: Ticket;
  readonly clientGone: AbortSignal;
}

declare module 'fastify' {
  interface FastifyRequest {
    searchSlot: SearchSlot | null;
  }
}

export const searchRoutes: FastifyPluginCallback<SearchRouteOptions> = (app, { searcher, queue, metrics, limits }, done) => {
  app.decorateRequest('searchSlot', null);

  app.post<{ Querystring: { top: number; minScore?: number; mode?: RankMode } }>('/search', {
    schema: {
      querystring: {
        type: 'object',
        properties: {
          top: { type: 'integer', minimum: 1, maximum: limits.maxTop, default: 10 },
          minScore: { type: 'number', minimum: -1, maximum: 1 },
          mode: { type: 'string', enum: [...RANK_MODES] },
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
  done();
};

/**
 * Wait for a search slot and run the search, answering 503 + Retry-After if both together take
 * longer than `timeoutMs`; leaving the queue early when the client disconnects. A search already
 * running cannot be interrupted: it finishes and keeps its slot until then, so the bound holds.
 */
async function runWithDeadline<T>(slot: SearchSlot, timeoutMs: number, queue: SearchQueue, search: (queueMs: number) => Promise<T>): Promise<T> {
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

function roundTimings(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([stage, ms]) => [stage, Math.round(ms * 100) / 100]));
}
