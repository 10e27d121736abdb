// BiMatch doc ranking from one query's top-k chunk matches. Same order of operations as the TS
// reference (hits grouped by doc, then row; sums in that order), so scores agree bit for bit.
// The TS version also orders a row's hits by query, which cannot change a minimum: skipped here.
#include "bimatch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace flower {
namespace {

constexpr double kDMiss = 2000;  // D_MISS in src/kernels/types.ts

struct Hit {
  uint64_t key;  // doc in the high half, row in the low half: one compare sorts by (doc, row)
  int32_t query;
  float score;  // 16 bytes in all, so the sort moves little
  int32_t doc() const { return int32_t(key >> 32); }
  int32_t row() const { return int32_t(key & 0xffffffffu); }
  double distance() const { return 1.0 - double(score); }
};

// The score from one doc's sums: the mean of the match side (its chunks' best distances, D_MISS
// for each chunk no query chunk reached) and the query side (likewise per query chunk), as 1 - mean.
double doc_score(double match_sum, int64_t match_hit, double match_count, double query_sum, int64_t query_hit,
                 int64_t query_chunks) {
  const double s_match = 1 - (match_sum + kDMiss * (match_count - double(match_hit))) / (kDMiss * match_count);
  const double s_query = 1 - (query_sum + kDMiss * double(query_chunks - query_hit)) / (kDMiss * double(query_chunks));
  return (s_match + s_query) / 2;
}

}  // namespace

std::vector<RankedDoc> bimatch(const int32_t* ids, const float* scores, int64_t k, int64_t query_chunks,
                               const int32_t* chunk_doc, size_t chunk_rows, const int32_t* doc_counts, size_t docs) {
  std::vector<Hit> hits;
  hits.reserve(size_t(query_chunks * k));
  for (int64_t q = 0; q < query_chunks; q++) {
    for (int64_t s = 0; s < k; s++) {
      const int32_t row = ids[size_t(q * k + s)];
      if (row < 0) continue;
      // Messages are built only on failure: this loop runs for every hit.
      if (size_t(row) >= chunk_rows)
        throw std::out_of_range("topk.ids holds row " + std::to_string(row) + ", not a chunk row");
      const int32_t doc = chunk_doc[size_t(row)];
      if (doc < 0 || size_t(doc) >= docs)
        throw std::out_of_range("chunkDoc[" + std::to_string(row) + "] is not a doc index");
      if (doc_counts[size_t(doc)] < 1)
        throw std::out_of_range("docChunkCounts[" + std::to_string(doc) + "] < 1 for a doc with a match");
      hits.push_back({(uint64_t(uint32_t(doc)) << 32) | uint32_t(row), int32_t(q), scores[size_t(q * k + s)]});
    }
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.key < b.key; });

  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<RankedDoc> ranked;
  ranked.reserve(hits.size());
  std::vector<double> best_per_query(static_cast<size_t>(query_chunks));
  for (size_t start = 0; start < hits.size();) {
    const int32_t doc = hits[start].doc();
    const double match_count = doc_counts[size_t(doc)];
    if (start + 1 == hits.size() || hits[start + 1].doc() != doc) {
      // A doc with one hit (most docs, when the top-k spreads over many): the loop below, unrolled
      // by hand. A NaN or +inf distance never becomes a best, as in the loop.
      const double distance = hits[start].distance();
      const bool best = distance < kInf;
      const double score = doc_score(best ? distance : kInf, 1, match_count, best ? distance : 0.0, best, query_chunks);
      ranked.push_back({std::isnan(score) ? -kInf : score, score, doc, best ? hits[start].row() : -1});
      start++;
      continue;
    }
    size_t end = start;
    while (end < hits.size() && hits[end].doc() == doc) end++;

    double match_sum = 0, best_distance = kInf;
    int64_t match_hit = 0;
    int32_t best_chunk = -1;
    std::fill(best_per_query.begin(), best_per_query.end(), kInf);
    for (size_t i = start; i < end;) {
      const int32_t row = hits[i].row();
      double row_best = kInf;
      for (; i < end && hits[i].row() == row; i++) {
        const double distance = hits[i].distance();
        row_best = std::min(row_best, distance);
        double& query_best = best_per_query[size_t(hits[i].query)];
        query_best = std::min(query_best, distance);
      }
      match_sum += row_best;
      match_hit++;
      if (row_best < best_distance) {
        best_distance = row_best;
        best_chunk = row;
      }
    }
    double query_sum = 0;
    int64_t query_hit = 0;
    for (double best : best_per_query) {  // branch-free: which queries a doc matched is unpredictable
      const bool hit = best != kInf;
      query_sum += hit ? best : 0.0;  // + 0.0 leaves a sum of distances (never -0) unchanged
      query_hit += hit;
    }
    const double score = doc_score(match_sum, match_hit, match_count, query_sum, query_hit, query_chunks);
    ranked.push_back({std::isnan(score) ? -kInf : score, score, doc, best_chunk});
    start = end;
  }
  // The key, not the score, in the comparison: a NaN would break the sort's ordering contract.
  std::sort(ranked.begin(), ranked.end(),
            [](const RankedDoc& a, const RankedDoc& b) { return a.key > b.key || (a.key == b.key && a.doc < b.doc); });
  return ranked;
}

}  // namespace flower
