/**
 * The few Prometheus series the server exposes, rendered in the text exposition format
 * (version 0.0.4). Hand-rolled because four metric kinds do not justify a client library.
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds (seconds) of the request latency histogram. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  buckets: number[];
  count: number;
  sum: number;
}

/** Live values read at scrape time rather than pushed on every change. */
export interface Gauges {
  queueWaiting(): number;
  searchesInFlight(): number;
  indexDocs(): number;
  indexChunks(): number;
}

export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private readonly stageSeconds = new Map<string, number>();
  private rejected = 0;
  private searches = 0;
  private readonly startedAt = Date.now();

  constructor(private readonly gauges: Gauges) {}

  /** One finished HTTP request; `route` is the route pattern (`/docs/:id`), never the raw URL. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = labels({ method, route, status: String(status) });
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const routeKey = labels({ route });
    let histogram = this.latency.get(routeKey);
    if (!histogram) {
      histogram = { buckets: LATENCY_BUCKETS.map(() => 0), count: 0, sum: 0 };
      this.latency.set(routeKey, histogram);
    }
    LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) histogram.buckets[i]++;
    });
    histogram.count++;
    histogram.sum += seconds;
  }

  /** One completed search and the milliseconds it spent in each stage. */
  observeSearch(stagesMs: Record<string, number>): void {
    this.searches++;
    for (const [stage, ms] of Object.entries(stagesMs)) {
      const key = labels({ stage });
      this.stageSeconds.set(key, (this.stageSeconds.get(key) ?? 0) + ms / 1000);
    }
  }

  /** One search refused because the queue was full. */
  observeRejection(): void {
    this.rejected++;
  }

  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    family('flower_http_requests_total', 'counter', 'HTTP requests answered, by method, route pattern and status.');
    for (const [key, value] of this.requests) out.push(`flower_http_requests_total{${key}} ${value}`);

    family('flower_http_request_duration_seconds', 'histogram', 'HTTP request latency by route pattern.');
    for (const [key, h] of this.latency) {
      LATENCY_BUCKETS.forEach((bound, i) => out.push(`flower_http_request_duration_seconds_bucket{${key},le="${bound}"} ${h.buckets[i]}`));
      out.push(`flower_http_request_duration_seconds_bucket{${key},le="+Inf"} ${h.count}`);
      out.push(`flower_http_request_duration_seconds_sum{${key}} ${h.sum}`);
      out.push(`flower_http_request_duration_seconds_count{${key}} ${h.count}`);
    }

    family('flower_searches_total', 'counter', 'Searches completed.');
    out.push(`flower_searches_total ${this.searches}`);
    family('flower_search_stage_seconds_total', 'counter', 'Time spent in each search stage, summed over searches.');
    for (const [key, value] of this.stageSeconds) out.push(`flower_search_stage_seconds_total{${key}} ${value}`);
    family('flower_search_rejected_total', 'counter', 'Searches refused with 429 because the queue was full.');
    out.push(`flower_search_rejected_total ${this.rejected}`);
    family('flower_search_queue_depth', 'gauge', 'Admitted searches waiting for a slot (including uploads in progress).');
    out.push(`flower_search_queue_depth ${this.gauges.queueWaiting()}`);
    family('flower_search_in_flight', 'gauge', 'Searches running now.');
    out.push(`flower_search_in_flight ${this.gauges.searchesInFlight()}`);
    family('flower_index_docs', 'gauge', 'Documents (images) in the served index.');
    out.push(`flower_index_docs ${this.gauges.indexDocs()}`);
    family('flower_index_chunks', 'gauge', 'Chunk vectors in the served index.');
    out.push(`flower_index_chunks ${this.gauges.indexChunks()}`);
    family('flower_process_uptime_seconds', 'gauge', 'Seconds since the server started.');
    out.push(`flower_process_uptime_seconds ${(Date.now() - this.startedAt) / 1000}`);
    return `${out.join('\n')}\n`;
  }
}

/** `a="x",b="y"` with label values escaped as the exposition format requires. */
function labels(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
