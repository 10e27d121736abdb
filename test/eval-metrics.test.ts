import test from 'ava';
import { averagePrecision, meanMetrics, precisionAt, queryMetrics, type RankedEntry } from '../src/eval/metrics.js';

/** Ranking with distinct descending scores and the given relevance pattern. */
function ranked(relevance: string): RankedEntry[] {
  return [...relevance].map((c, i) => ({ score: 1 - i / 100, relevant: c === '1' }));
}

test('precision@k and AP on a ranking without ties, against hand-computed values', (t) => {
  // Relevant at ranks 1, 3 and 6 of 6 (R = 3).
  const ranking = ranked('101001');
  t.is(precisionAt(ranking, 1), 1);
  t.is(precisionAt(ranking, 5), 2 / 5);
  t.is(precisionAt(ranking, 10), 3 / 10, 'a ranking shorter than k still divides by k');
  // AP = (1/1 + 2/3 + 3/6) / 3
  t.true(Math.abs(averagePrecision(ranking) - (1 + 2 / 3 + 3 / 6) / 3) < 1e-12);
  t.true(Math.abs(averagePrecision(ranking, 10) - (1 + 2 / 3 + 3 / 6) / 3) < 1e-12, 'AP@10 = AP when R <= 10 and N <= 10');
  // AP@2 only sees rank 1 (relevant) and rank 2; normalized by min(R, 2) = 2.
  t.is(averagePrecision(ranking, 2), 1 / 2);
  t.is(averagePrecision(ranking, 3), (1 + 2 / 3) / 3);
});

test('perfect and empty rankings', (t) => {
  t.deepEqual(queryMetrics(ranked('1111100000')), { p1: 1, p5: 1, p10: 0.5, ap10: 1, ap: 1, rprec: 1 });
  t.deepEqual(queryMetrics(ranked('000')), { p1: 0, p5: 0, p10: 0, ap10: 0, ap: 0, rprec: 0 }, 'no relevant doc: every metric is 0');
  t.is(averagePrecision(ranked('0000000000001'), 10), 0, 'the only relevant doc below the cutoff');
  t.is(averagePrecision(ranked('0000000000001')), 1 / 13);
});

test('ties count as the expected value over their orders', (t) => {
  // Rank 1 relevant, then a tie of two (one relevant), then one irrelevant.
  const ranking: RankedEntry[] = [
    { score: 0.9, relevant: true },
    { score: 0.5, relevant: false },
    { score: 0.5, relevant: true },
    { score: 0.1, relevant: false },
  ];
  // Orders: relevant at rank 2 → AP (1 + 2/2)/2 = 1; at rank 3 → (1 + 2/3)/2.
  t.true(Math.abs(averagePrecision(ranking) - (1 + (1 + 2 / 3) / 2) / 2) < 1e-12);
  t.is(precisionAt(ranking, 2), (1 + 0.5) / 2);
});

/** Brute force: average a metric over every order of every tie group. */
function expectedOverTieOrders(ranking: RankedEntry[], metric: (r: RankedEntry[]) => number): number {
  const orders: RankedEntry[][] = [[]];
  let start = 0;
  while (start < ranking.length) {
    let end = start;
    while (end < ranking.length && ranking[end].score === ranking[start].score) end++;
    const groupOrders = permutations(ranking.slice(start, end));
    const next: RankedEntry[][] = [];
    for (const prefix of orders) for (const order of groupOrders) next.push([...prefix, ...order]);
    orders.splice(0, orders.length, ...next);
    start = end;
  }
  return orders.reduce((sum, order) => sum + metric(order.map((e, i) => ({ relevant: e.relevant, score: -i }))), 0) / orders.length;
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

test('tie-aware metrics equal brute-force enumeration of tie orders', (t) => {
  const ranking: RankedEntry[] = [
    { score: 3, relevant: false },
    { score: 2, relevant: true },
    { score: 2, relevant: false },
    { score: 2, relevant: true },
    { score: 1, relevant: true },
    { score: -Infinity, relevant: false },
    { score: -Infinity, relevant: true },
    { score: -Infinity, relevant: false },
    { score: -Infinity, relevant: false },
  ];
  for (const k of [1, 2, 3, 5, 7, 10]) {
    t.true(Math.abs(precisionAt(ranking, k) - expectedOverTieOrders(ranking, (r) => precisionAt(r, k))) < 1e-12, `P@${k}`);
    t.true(Math.abs(averagePrecision(ranking, k) - expectedOverTieOrders(ranking, (r) => averagePrecision(r, k))) < 1e-12, `AP@${k}`);
  }
  t.true(Math.abs(averagePrecision(ranking) - expectedOverTieOrders(ranking, (r) => averagePrecision(r))) < 1e-12);
});

test('bad input is refused', (t) => {
  t.throws(() => precisionAt(ranked('10'), 0), { instanceOf: RangeError });
  t.throws(() => averagePrecision(ranked('10'), 1.5), { instanceOf: RangeError });
  t.throws(
    () =>
      averagePrecision([
        { score: 0, relevant: true },
        { score: 1, relevant: false },
      ]),
    { message: /not sorted/ },
  );
});

test('meanMetrics averages each metric', (t) => {
  const mean = meanMetrics([queryMetrics(ranked('1')), queryMetrics(ranked('0'))]);
  t.is(mean.p1, 0.5);
  t.is(mean.ap, 0.5);
  t.deepEqual(meanMetrics([]), { p1: 0, p5: 0, p10: 0, ap10: 0, ap: 0, rprec: 0 });
});
