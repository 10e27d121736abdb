/**
 * Summary statistics shared by every bench section. Machines here are shared and noisy, so a
 * figure is always the median of several runs with its min–max, never a single run or a mean.
 */

/** A figure measured over several runs. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Number of runs it summarizes. */
  readonly runs: number;
}

function sorted(samples: readonly number[]): number[] {
  if (samples.length === 0) throw new RangeError('no samples to summarize');
  return [...samples].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0..100) with linear interpolation between closest ranks (numpy's default),
 * so percentile(xs, 50) is the median.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
  const xs = sorted(samples);
  const pos = ((xs.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function summarize(samples: readonly number[]): Summary {
  const xs = sorted(samples);
  return { median: median(xs), min: xs[0], max: xs[xs.length - 1], runs: xs.length };
}

/** Summary of a per-run ratio a/b, each ratio taken inside the same run (noise cancels out). */
export function summarizeRatio(numerators: readonly number[], denominators: readonly number[]): Summary {
  if (numerators.length !== denominators.length) throw new RangeError(`ratio needs paired runs: ${numerators.length} vs ${denominators.length}`);
  return summarize(numerators.map((n, i) => n / denominators[i]));
}

/** "12.3 (11.9–13.0)", or just "12.3" for a single run. */
export function formatSummary(s: Summary, digits = 1): string {
  const f = (x: number) => formatNumber(x, digits);
  return s.runs > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}

/** Fixed digits for ordinary values, 3 significant digits for very small or very large ones. */
export function formatNumber(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs !== 0 && abs < 10 ** -digits) return x.toPrecision(3);
  return x.toFixed(digits);
}

/**
 * Run `fn` `warmup` times unmeasured, then `runs` times, returning each run's wall time in ms.
 */
export async function timeRuns(runs: number, fn: () => unknown, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

/** A markdown table from a header row and data rows. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
