import test from 'ava';
import { formatSummary, markdownTable, median, percentile, summarize, summarizeRatio } from '../bench/stats.js';

test('percentiles interpolate linearly between ranks', (t) => {
  const xs = [5, 1, 4, 2, 3];
  t.is(median(xs), 3);
  t.is(percentile(xs, 0), 1);
  t.is(percentile(xs, 100), 5);
  t.is(percentile(xs, 25), 2);
  t.is(percentile([1, 2], 50), 1.5);
  t.is(percentile([10, 20, 30, 40], 95), 38.5);
  t.throws(() => percentile([], 50), { instanceOf: RangeError });
  t.throws(() => percentile([1], 101), { instanceOf: RangeError });
});

test('summaries keep median and range; ratios are taken per run', (t) => {
  t.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, runs: 3 });
  // Per-run ratios 2, 4, 1 → median 2 (not median(a)/median(b) = 6/2 = 3).
  t.deepEqual(summarizeRatio([2, 8, 6], [1, 2, 6]), { median: 2, min: 1, max: 4, runs: 3 });
  t.is(formatSummary({ median: 2, min: 1, max: 3.25, runs: 3 }, 1), '2.0 (1.0–3.3)');
  t.is(formatSummary({ median: 2, min: 2, max: 2, runs: 1 }, 0), '2');
});

test('markdown tables', (t) => {
  t.is(markdownTable(['a', 'b'], [['1', '2']]), '| a | b |\n| --- | --- |\n| 1 | 2 |');
});
