/**
 * Runs documents through a flow's pod graph. Each document visits the pods in `needs` order,
 * parallel branches concurrently; `prefetch` bounds how many documents are in flight at once
 * (the source is only pulled when a slot is free), and results come out in input order.
 */
import { performance } from 'node:perf_hooks';
import { InputError, SkipDoc } from '../errors.js';
import type { Executor, FlowDoc, FlowServices } from '../executors/types.js';
import type { FlowSpec, PodSpec } from './spec.js';

/** A document that finished the flow, or was dropped by a pod; `podTime`: ms spent in each pod. */
export interface FlowOutcome {
  readonly doc: FlowDoc;
  readonly skipped?: SkipDoc;
  readonly podTime: ReadonlyMap<string, number>;
}

export class RunningFlow {
  /** Milliseconds spent inside each pod's process(), summed over documents (pods overlap). */
  readonly podTime = new Map<string, number>();
  private seq = 0;

  private constructor(
    readonly spec: FlowSpec,
    private readonly pods: { spec: PodSpec; executor: Executor }[],
  ) {
    for (const pod of spec.pods) this.podTime.set(pod.name, 0);
  }

  /** Instantiate and open every pod's executor. */
  static async open(spec: FlowSpec, services: FlowServices): Promise<RunningFlow> {
    const pods: { spec: PodSpec; executor: Executor }[] = [];
    try {
      for (const pod of spec.pods) {
        const executor = new pod.executor({ ...pod.params });
        pods.push({ spec: pod, executor });
        await executor.open?.({ pod: pod.name, flowFile: spec.file, replicas: pod.replicas, services });
      }
    } catch (err) {
      await closeAll(pods.map((pod) => pod.executor));
      throw err;
    }
    return new RunningFlow(spec, pods);
  }

  /**
   * Run one document through the graph. Resolves with the outcome; rejects only on executor failures
   * that are not skips, or with the signal's reason once it aborts (no pod starts after that).
   */
  async run(input: { uri: string; bytes?: Uint8Array; query?: FlowDoc['query']; signal?: AbortSignal }): Promise<FlowOutcome> {
    const doc: FlowDoc = { seq: this.seq++, uri: input.uri, bytes: input.bytes, query: input.query, tags: {} };
    const finished = new Map<string, Promise<void>>();
    const podTime = new Map<string, number>();
    for (const { spec, executor } of this.pods) {
      const ready = Promise.all(spec.needs.map((need) => finished.get(need)!));
      finished.set(
        spec.name,
        ready.then(async () => {
          input.signal?.throwIfAborted();
          const start = performance.now();
          try {
            await executor.process(doc);
          } finally {
            const ms = performance.now() - start;
            podTime.set(spec.name, ms);
            this.podTime.set(spec.name, this.podTime.get(spec.name)! + ms);
          }
        }),
      );
    }
    // Wait for every branch, even after one failed, so no pod still works on a document we let go.
    const settled = await Promise.allSettled(finished.values());
    const failure = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (!failure) return { doc, podTime };
    const skipped = asSkip(failure.reason, doc.uri);
    if (skipped) return { doc, skipped, podTime };
    throw failure.reason;
  }

  /**
   * Run every input with at most `spec.prefetch` documents in flight, calling `onOutcome` in
   * input order (awaited: a slow consumer slows the source down too).
   */
  async runAll(inputs: AsyncIterable<{ uri: string }> | Iterable<{ uri: string }>, onOutcome: (outcome: FlowOutcome) => void | Promise<void>): Promise<void> {
    const inFlight: Promise<FlowOutcome>[] = [];
    let failed: { error: unknown } | undefined;
    const drainOne = async (): Promise<void> => {
      const next = inFlight.shift()!;
      const outcome = await next;
      await onOutcome(outcome);
    };
    try {
      for await (const input of inputs) {
        const running = this.run(input);
        running.catch(() => undefined); // observed in drainOne; avoid an unhandled rejection meanwhile
        inFlight.push(running);
        if (inFlight.length >= this.spec.prefetch) await drainOne();
      }
      while (inFlight.length) await drainOne();
    } catch (error) {
      failed = { error };
    }
    // Let documents already started finish before the caller closes the executors.
    await Promise.allSettled(inFlight);
    if (failed) throw failed.error;
  }

  async close(): Promise<void> {
    await closeAll(this.pods.map((pod) => pod.executor).reverse());
  }
}

/** A skip thrown by a pod: SkipDoc, or the image decoder's InputError (a file that cannot be used). */
function asSkip(err: unknown, uri: string): SkipDoc | undefined {
  if (err instanceof SkipDoc) return err;
  if (err instanceof InputError) return new SkipDoc(uri, err.reason, false, { cause: err });
  return undefined;
}

async function closeAll(executors: Executor[]): Promise<void> {
  const results = await Promise.allSettled(executors.map(async (executor) => executor.close?.()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
}
