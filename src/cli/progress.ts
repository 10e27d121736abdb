/**
 * Index progress: a cli-progress bar (images/s, ETA) on a terminal, a plain line at every 10 % or
 * 10 s otherwise (logs, CI), nothing when quiet.
 */
import cliProgress from 'cli-progress';
import type { DownloadHooks, DownloadProgress } from '../download/index.js';
import type { IndexProgress } from '../flows/indexing.js';

export interface ProgressReporter {
  update(progress: IndexProgress): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 10_000;

export function progressReporter(mode: 'bar' | 'plain' | 'none', stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (mode === 'none') return { update() {}, stop() {} };
  if (mode === 'plain') {
    let lastStep = 0;
    let lastAt = 0;
    return {
      update(p) {
        const step = p.total ? Math.floor((10 * p.done) / p.total) : 0;
        if (step === lastStep && p.elapsedMs - lastAt < PLAIN_EVERY_MS) return;
        [lastStep, lastAt] = [step, p.elapsedMs];
        const rate = p.indexed / (p.elapsedMs / 1000);
        stream.write(`indexing: ${p.done}/${p.total} files (${p.indexed} indexed, ${p.unchanged} unchanged, ${p.skipped} skipped), ${p.chunks} chunks, ${rate.toFixed(1)} images/s\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: 'indexing [{bar}] {value}/{total} files | {rate} images/s | {chunks} chunks | {skipped} skipped | ETA {eta_formatted}', stream, hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      const payload = { rate: (p.indexed / (p.elapsedMs / 1000)).toFixed(1), chunks: p.chunks, skipped: p.skipped };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else bar.update(p.done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Download progress of the default dataset and model (and waits for another process's), in the same three modes. */
export function downloadReporter(mode: 'bar' | 'plain' | 'none', stream: NodeJS.WriteStream = process.stderr): Required<DownloadHooks> & { stop(): void } {
  let bar: cliProgress.SingleBar | undefined;
  let current: string | undefined;
  let lastStep = -1;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  const report = (p: DownloadProgress) => {
    const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
    if (mode === 'none') return;
    if (mode === 'plain') {
      const step = p.total ? Math.floor((10 * p.received) / p.total) : Math.floor(p.received / (16 << 20));
      if (p.file === current && step === lastStep) return;
      [current, lastStep] = [p.file, step];
      stream.write(`downloading ${p.url}: ${mib(p.received)}${p.total ? ` / ${mib(p.total)}` : ''} MiB\n`);
      return;
    }
    if (p.file !== current) {
      stop();
      current = p.file;
      bar = new cliProgress.SingleBar({ format: `downloading ${p.url} [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta_formatted}`, stream }, cliProgress.Presets.shades_classic);
      bar.start(p.total ?? 0, p.received);
    } else bar?.update(p.received);
  };
  const wait = (message: string) => {
    if (mode !== 'none') stream.write(`${message}\n`);
  };
  return { onProgress: report, onWait: wait, stop };
}
