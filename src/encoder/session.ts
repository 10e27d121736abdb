/** onnxruntime session settings shared by the encoder workers, `doctor` and the bench. */
import type { InferenceSession } from 'onnxruntime-node';

/** What each encoder worker needs, passed once as Piscina workerData. */
export interface WorkerConfig {
  /** The ONNX bytes in shared memory: every worker reads the same copy. */
  readonly model: SharedArrayBuffer;
  readonly modelLength: number;
  readonly inputName: string;
  readonly outputName: string;
  readonly width: number;
  readonly height: number;
  readonly dim: number;
  /** Region pooling: the feature-map output of a shape-dynamic model (model/dynamic.ts). */
  readonly featuresName?: string;
  readonly intraOpThreads: number;
  readonly allowSpinning: boolean;
  /** Int32 counter: each worker adds 1 once its session exists or has failed. */
  readonly settled: SharedArrayBuffer;
}

/**
 * One session per worker thread, `intraOpThreads` threads in its intra-op pool (1 = run on the
 * worker thread itself), no inter-op parallelism, and no spinning: by default onnxruntime's pool
 * threads busy-wait for work between runs, burning the cores that decoding and the other workers
 * need. The `extra` keys become the session config entries "session.intra_op.allow_spinning" and
 * "session.inter_op.allow_spinning" (onnxruntime_session_options_config_keys.h; the Node binding
 * joins nested keys with dots). `allowSpinning` exists so the bench and tests can compare.
 */
export function sessionOptions(intraOpThreads: number, allowSpinning = false): InferenceSession.SessionOptions {
  const spin = allowSpinning ? '1' : '0';
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}
