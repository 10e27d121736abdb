/** Liveness and load for operators: /healthz as JSON, /metrics in the Prometheus text format. */
import type { FastifyPluginCallback } from 'fastify';
import type { ServerLimits } from '../limits.js';
import type { ServerMetrics } from '../metrics.js';
import type { SearchQueue } from '../queue.js';
import type { SearchBackend } from '../types.js';

export interface HealthRouteOptions {
  readonly searcher: SearchBackend;
  readonly queue: SearchQueue;
  readonly metrics: ServerMetrics;
  readonly limits: ServerLimits;
}

export const healthRoutes: FastifyPluginCallback<HealthRouteOptions> = (app, { searcher, queue, metrics, limits }, done) => {
  app.get('/healthz', () => ({
    status: 'ok',
    docs: searcher.workspace.docCount,
    chunks: searcher.workspace.chunkCount,
    queue: { inFlight: queue.inFlight, waiting: queue.waiting, uploading: queue.uploading, maxConcurrent: limits.maxConcurrent, maxWaiting: limits.maxWaiting },
  }));
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));
  done();
};
