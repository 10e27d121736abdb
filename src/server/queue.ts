/**
 * Admission control for searches: at most `maxConcurrent` run at once and at most `maxWaiting`
 * more wait for a slot. A request takes its place only once its upload is in, so clients that send
 * slowly hold no place (the request timeout and the per-client connection limit bound them); a
 * request arriving while every place is taken is refused before its body is read.
 */
export interface QueueLimits {
  /** Searches running at once (the encoder pool's replicas are the natural value). */
  readonly maxConcurrent: number;
  /** Admitted requests allowed to wait for a slot beyond `maxConcurrent`. */
  readonly maxWaiting: number;
}

/** A place in the queue: run the search with it once, release it when the response is done. */
export interface Ticket {
  /** Wait for a slot, run `work`, free the slot. Rejects with `signal.reason` if aborted while waiting. */
  run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Give the place back (idempotent); called when the response finishes or the client goes away. */
  release(): void;
}

export class SearchQueue {
  private admitted = 0;
  private running = 0;
  private receiving = 0;
  private readonly waiters: (() => void)[] = [];
  /** Exponential moving average of one search's service time, for Retry-After estimates. */
  private averageServiceMs = 0;

  constructor(readonly limits: QueueLimits) {
    if (!(limits.maxConcurrent >= 1) || !(limits.maxWaiting >= 0)) {
      throw new RangeError(`queue limits: maxConcurrent must be ≥ 1 and maxWaiting ≥ 0 (got ${limits.maxConcurrent}, ${limits.maxWaiting})`);
    }
  }

  /** Searches running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Admitted requests waiting for a slot. */
  get waiting(): number {
    return this.admitted - this.running;
  }

  /** Every place is taken: a new request would be refused. */
  get full(): boolean {
    return this.admitted >= this.limits.maxConcurrent + this.limits.maxWaiting;
  }

  /** Requests still receiving their upload, in front of the queue (no place taken yet). */
  get uploading(): number {
    return this.receiving;
  }

  /** Count one request as uploading until the returned function is called (idempotent). */
  beginUpload(): () => void {
    this.receiving++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.receiving--;
    };
  }

  /** A ticket, or null when `maxConcurrent + maxWaiting` requests are already admitted. */
  tryAdmit(): Ticket | null {
    if (this.full) return null;
    this.admitted++;
    // The ticket leaves the queue once released AND its search is over: a client that goes away
    // mid-search does not free the encoder it is still using.
    let released = false;
    let started = false;
    // True from run() until its search is over (waiting for a slot included), set synchronously
    // so a release() right after run() cannot slip in before the search holds its slot.
    let busy = false;
    let gone = false;
    const leaveIfDone = (): void => {
      if (gone || !released || busy) return;
      gone = true;
      this.admitted--;
    };
    return {
      release: () => {
        released = true;
        leaveIfDone();
      },
      run: async <T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
        if (started) throw new Error('a queue ticket runs one search');
        started = true;
        busy = true;
        try {
          await this.acquireSlot(signal);
        } catch (err) {
          busy = false;
          leaveIfDone();
          throw err;
        }
        const began = performance.now();
        try {
          return await work();
        } finally {
          this.recordServiceTime(performance.now() - began);
          this.freeSlot();
          busy = false;
          leaveIfDone();
        }
      },
    };
  }

  /** Seconds a refused client should wait: the admitted backlog times the average search time. */
  retryAfterSeconds(): number {
    const backlog = this.admitted / this.limits.maxConcurrent;
    return Math.max(1, Math.ceil((backlog * this.averageServiceMs) / 1000));
  }

  private acquireSlot(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.running < this.limits.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.running++;
        resolve();
      };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(grant);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  private freeSlot(): void {
    this.running--;
    this.waiters.shift()?.();
  }

  private recordServiceTime(ms: number): void {
    this.averageServiceMs = this.averageServiceMs === 0 ? ms : 0.8 * this.averageServiceMs + 0.2 * ms;
  }
}
