/**
 * The server's Prometheus series, on a registry of its own (never prom-client's global one): two
 * servers in one process keep separate counts, and the host application's own metrics stay its own.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Upper bounds (seconds) of the request latency histogram. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Live values read at scrape time rather than pushed on every change. */
export interface Gauges {
  readonly queueWaiting: () => number;
  readonly searchesInFlight: () => number;
  readonly uploadsInProgress: () => number;
  readonly indexDocs: () => number;
  readonly indexChunks: () => number;
}

export class ServerMetrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly searches: Counter;
  private readonly stageSeconds: Counter<'stage'>;
  private readonly rejected: Counter;
  private readonly refusedConnections: Counter<'reason'>;

  constructor(gauges: Gauges) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'flower_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status.', labelNames: ['method', 'route', 'status'], registers });
    this.latency = new Histogram({ name: 'flower_http_request_duration_seconds', help: 'HTTP request latency by route pattern.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.searches = new Counter({ name: 'flower_searches_total', help: 'Searches completed.', registers });
    this.stageSeconds = new Counter({ name: 'flower_search_stage_seconds_total', help: 'Time spent in each search stage, summed over searches.', labelNames: ['stage'], registers });
    this.rejected = new Counter({ name: 'flower_search_rejected_total', help: 'Searches refused with 429 because the queue was full.', registers });
    this.refusedConnections = new Counter({
      name: 'flower_http_connections_refused_total',
      help: 'Connections answered and closed before a request was routed: too_many_connections, request_timeout, headers_too_large, bad_request.',
      labelNames: ['reason'],
      registers,
    });
    const live = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    live('flower_search_queue_depth', 'Admitted searches waiting for a slot.', gauges.queueWaiting);
    live('flower_search_in_flight', 'Searches running now.', gauges.searchesInFlight);
    live('flower_search_uploads_in_progress', 'Search requests still receiving their upload (not in the queue yet).', gauges.uploadsInProgress);
    live('flower_index_docs', 'Documents (images) in the served index.', gauges.indexDocs);
    live('flower_index_chunks', 'Chunk vectors in the served index.', gauges.indexChunks);
    const startedAt = Date.now();
    live('flower_process_uptime_seconds', 'Seconds since the server started.', () => (Date.now() - startedAt) / 1000);
  }

  /** The exposition format's media type (text version 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** One finished HTTP request; `route` is the route pattern (`/docs/:id`), never the raw URL. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  /** One completed search and the milliseconds it spent in each stage. */
  observeSearch(stagesMs: Record<string, number>): void {
    this.searches.inc();
    for (const [stage, ms] of Object.entries(stagesMs)) this.stageSeconds.inc({ stage }, ms / 1000);
  }

  /** One search refused because the queue was full. */
  observeRejection(): void {
    this.rejected.inc();
  }

  /** One connection answered on the socket and closed (`reason`: the error code it got). */
  observeRefusedConnection(reason: string): void {
    this.refusedConnections.inc({ reason });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
