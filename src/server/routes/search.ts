/**
 * POST /search: refused with 429 before its body is read if every queue place is taken; otherwise
 * its upload is received (holding no place meanwhile), checked from its header, and only then
 * admitted to the queue and searched within the deadline (503 beyond).
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

/** A /search request's state: a signal that fires if its client goes away, and its place in the queue once its upload is in. */
interface SearchSlot {
  readonly clientGone: AbortSignal;
  /** Counts the request as uploading until called. */
  readonly uploaded: () => void;
  ticket?: Ticket;
}

declare module 'fastify' {
  interface FastifyRequest {
    searchSlot: SearchSlot | null;
  }
}

export const searchRoutes: FastifyPluginCallback<SearchRouteOptions> = (app, { searcher, queue, metrics, limits }, done) => {
  app.decorateRequest('searchSlot', null);

  const queueFull = (): ApiError => {
    metrics.observeRejection();
    const retryAfter = String(queue.retryAfterSeconds());
    return new ApiError('queue_full', `server busy: ${limits.maxConcurrent} searches running and ${limits.maxWaiting} waiting; retry in ${retryAfter} s`, { 'retry-after': retryAfter });
  };

  app.post<{ Querystring: { top: number; minScore?: number; mode?: RankMode } }>(
    '/search',
    {
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
      // A full server does not take the upload; one with room takes it without holding a place for it.
      onRequest: async (request, reply) => {
        if (queue.full) throw queueFull();
        // Listening from the start: a client that leaves during its upload or probe is not searched for.
        const clientGone = new AbortController();
        const slot: SearchSlot = { clientGone: clientGone.signal, uploaded: queue.beginUpload() };
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) clientGone.abort(new ApiError('client_closed', 'the client went away before the answer'));
          slot.uploaded();
          slot.ticket?.release();
        });
        request.searchSlot = slot;
      },
    },
    async (request) => {
      const started = performance.now();
      const slot = request.searchSlot!;
      const upload = await probeUpload(await readUpload(request, limits.maxUploadBytes).finally(slot.uploaded), limits.maxPixels);
      slot.clientGone.throwIfAborted();
      slot.ticket = queue.tryAdmit() ?? undefined;
      if (!slot.ticket) throw queueFull();
      const outcome = await runWithDeadline(slot.ticket, slot.clientGone, limits.searchTimeoutMs, queue, (queueMs, signal) => {
        const { top, minScore, mode } = request.query;
        return searcher.search(upload.bytes, { top, minScore, mode, signal }).then((result) => ({ result, queueMs }));
      });
      const timings = { queue: outcome.queueMs, ...outcome.result.timings, total: performance.now() - started };
      metrics.observeSearch(outcome.result.timings);
      return {
        query: { bytes: upload.bytes.byteLength, ...upload.header },
        results: outcome.result.results.map((hit) => ({ ...hit, area: areaOf(hit.box, searcher.workspace.doc(hit.docId)), ...docLinks(hit.docId) })),
        timings: roundTimings(timings),
      };
    },
  );
  done();
};

/**
 * Wait for a search slot and run the search, answering 503 + Retry-After if both together take
 * longer than `timeoutMs`. The search's signal aborts at the deadline or when the client goes away:
 * a waiting search leaves the queue, a running one stops at its next stage (and keeps its slot until
 * it has, so the concurrency bound holds).
 */
async function runWithDeadline<T>(ticket: Ticket, clientGone: AbortSignal, timeoutMs: number, queue: SearchQueue, search: (queueMs: number, signal: AbortSignal) => Promise<T>): Promise<T> {
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
    const abandoned = AbortSignal.any([clientGone, timedOut.signal]);
    return await Promise.race([ticket.run(() => search(performance.now() - queued, abandoned), abandoned), deadline]);
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
