/**
 * Retrieval metrics for one ranked list, as pure functions.
 *
 * A ranking is the full list of candidate docs for one query (the query itself excluded), best
 * first, each with its score and whether it is relevant (same class as the query). Docs a ranker
 * did not return are appended by the caller with score -Infinity, so every ranking covers the
 * whole collection and R (the number of relevant docs) is simply the count of relevant entries.
 *
 * Ties: when several docs share a score, their order says nothing about the ranker, so every
 * metric here is the EXPECTED value over all orders of each tie group (McSherry & Najork,
 * "Computing information retrieval performance measures efficiently in the presence of tied
 * scores", ECIR 2008). Without ties this is the usual value.
 *
 * Definitions (rel_i = 1 if the doc at rank i is relevant, P@i = (Σ_{j≤i} rel_j) / i):
 *   precision@k = (Σ_{i≤k} rel_i) / k            (a ranking shorter than k still divides by k)
 *   AP          = (1/R) Σ_{i≤N} rel_i · P@i       (N = all other docs; 0 when R = 0)
 *   AP@k        = (1/min(R,k)) Σ_{i≤k} rel_i · P@i (so a perfect top k scores 1; 0 when R = 0)
 * mAP / mAP@k are the means of AP / AP@k over queries.
 */

export interface RankedEntry {
  readonly score: number;
  readonly relevant: boolean;
}

/** A run of equal scores: ranks [start, start + size) (0-based), `relevant` of them relevant. */
interface TieGroup {
  readonly start: number;
  readonly size: number;
  readonly relevant: number;
}

function tieGroups(ranking: readonly RankedEntry[]): TieGroup[] {
  const groups: TieGroup[] = [];
  let start = 0;
  for (let i = 1; i <= ranking.length; i++) {
    if (i < ranking.length && sameScore(ranking[i].score, ranking[start].score)) continue;
    let relevant = 0;
    for (let j = start; j < i; j++) if (ranking[j].relevant) relevant++;
    groups.push({ start, size: i - start, relevant });
    start = i;
  }
  return groups;
}

function sameScore(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function assertSorted(ranking: readonly RankedEntry[]): void {
  for (let i = 1; i < ranking.length; i++) {
    if (ranking[i].score > ranking[i - 1].score) {
      throw new RangeError(`ranking is not sorted best-first: score ${ranking[i].score} at rank ${i + 1} beats ${ranking[i - 1].score} at rank ${i}`);
    }
  }
}

/** Number of relevant docs in the ranking (R). */
export function relevantCount(ranking: readonly RankedEntry[]): number {
  let r = 0;
  for (const entry of ranking) if (entry.relevant) r++;
  return r;
}

/** Expected precision@k (see the module comment). */
export function precisionAt(ranking: readonly RankedEntry[], k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`precision@k needs an integer k >= 1, got ${k}`);
  assertSorted(ranking);
  let hits = 0;
  for (const group of tieGroups(ranking)) {
    if (group.start >= k) break;
    const taken = Math.min(group.size, k - group.start);
    hits += (taken * group.relevant) / group.size;
  }
  return hits / k;
}

/**
 * Expected average precision, over the whole ranking (`cutoff` omitted) or its first `cutoff`
 * ranks (AP@cutoff, normalized by min(R, cutoff)). See the module comment.
 */
export function averagePrecision(ranking: readonly RankedEntry[], cutoff?: number): number {
  if (cutoff !== undefined && (!Number.isInteger(cutoff) || cutoff < 1)) {
    throw new RangeError(`AP@k needs an integer k >= 1, got ${cutoff}`);
  }
  assertSorted(ranking);
  const total = relevantCount(ranking);
  if (total === 0) return 0;
  const last = Math.min(cutoff ?? ranking.length, ranking.length);
  let sum = 0;
  let relevantBefore = 0;
  for (const group of tieGroups(ranking)) {
    if (group.start >= last) break;
    if (group.relevant > 0) {
      // Rank i (1-based) inside the group holds a relevant doc with probability r/n; given that,
      // the expected relevant docs among the group's earlier positions are (pos-1)(r-1)/(n-1).
      const share = group.relevant / group.size;
      const othersPerSlot = group.size > 1 ? (group.relevant - 1) / (group.size - 1) : 0;
      const end = Math.min(group.start + group.size, last);
      for (let i = group.start + 1; i <= end; i++) {
        const before = i - group.start - 1;
        sum += (share * (relevantBefore + 1 + before * othersPerSlot)) / i;
      }
    }
    relevantBefore += group.relevant;
  }
  return sum / Math.min(total, cutoff ?? total);
}

/** The metrics eval reports for one query. */
export interface QueryMetrics {
  readonly p1: number;
  readonly p5: number;
  readonly p10: number;
  readonly ap10: number;
  readonly ap: number;
  /** R-precision: precision@R, R = the query's relevant docs (0 when R = 0). */
  readonly rprec: number;
}

export const METRIC_NAMES: readonly (keyof QueryMetrics)[] = ['p1', 'p5', 'p10', 'ap10', 'ap', 'rprec'];

/** Column headings, in the order of METRIC_NAMES. */
export const METRIC_LABELS: Record<keyof QueryMetrics, string> = {
  p1: 'P@1',
  p5: 'P@5',
  p10: 'P@10',
  ap10: 'mAP@10',
  ap: 'mAP',
  rprec: 'R-prec',
};

export function queryMetrics(ranking: readonly RankedEntry[]): QueryMetrics {
  return {
    p1: precisionAt(ranking, 1),
    p5: precisionAt(ranking, 5),
    p10: precisionAt(ranking, 10),
    ap10: averagePrecision(ranking, 10),
    ap: averagePrecision(ranking),
    rprec: relevantCount(ranking) > 0 ? precisionAt(ranking, relevantCount(ranking)) : 0,
  };
}

/** Mean of each metric over a set of queries (all zeros for an empty set). */
export function meanMetrics(all: readonly QueryMetrics[]): QueryMetrics {
  const sums = { p1: 0, p5: 0, p10: 0, ap10: 0, ap: 0, rprec: 0 };
  for (const m of all) for (const name of METRIC_NAMES) sums[name] += m[name];
  const n = Math.max(all.length, 1);
  return { p1: sums.p1 / n, p5: sums.p5 / n, p10: sums.p10 / n, ap10: sums.ap10 / n, ap: sums.ap / n, rprec: sums.rprec / n };
}
