// BiMatch doc ranking from one query's top-k chunk matches. Same order of operations as the TS
// reference (hits grouped by doc, then row; sums in that order), so scores agree bit for bit.
// The TS version also orders a row's hits by query, which cannot change a minimum: skipped here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "args.h"
#include "kernels.h"

namespace flower {
namespace {

constexpr double kDMiss = 2000;  // D_MISS in src/kernels/types.ts

struct Hit {
  uint64_t key;  // doc in the high half, row in the low half: one compare sorts by (doc, row)
  int32_t query;
  float score;   // 16 bytes in all, so the sort moves little
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

struct Ranked {
  double key;  // the score, NaN (only from non-finite input scores) as -inf: ranks last, as in TS
  double score;
  int32_t doc;
  int32_t best_chunk;
};

Napi::Value BiMatch(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const auto ids = typed_arg<int32_t>(info, 0, "topk.ids");
  const auto scores = typed_arg<float>(info, 1, "topk.scores");
  const int64_t k = int_arg(info, 2, "topk.k", 0);
  const int64_t query_chunks = int_arg(info, 3, "queryChunks", 0);
  const auto chunk_doc = typed_arg<int32_t>(info, 4, "chunkDoc");
  const auto doc_counts = typed_arg<int32_t>(info, 5, "docChunkCounts");
  range_check(env, int64_t(ids.ElementLength()) == query_chunks * k && int64_t(scores.ElementLength()) == query_chunks * k,
              "topk.ids/scores must hold queryChunks x k entries");

  std::vector<Hit> hits;
  hits.reserve(ids.ElementLength());
  for (int64_t q = 0; q < query_chunks; q++) {
    for (int64_t s = 0; s < k; s++) {
      const int32_t row = ids[size_t(q * k + s)];
      if (row < 0) continue;
      // Messages are built only on failure: this loop runs for every hit.
      if (size_t(row) >= chunk_doc.ElementLength())
        throw Napi::RangeError::New(env, "topk.ids holds row " + std::to_string(row) + ", not a chunk row");
      const int32_t doc = chunk_doc[size_t(row)];
      if (doc < 0 || size_t(doc) >= doc_counts.ElementLength())
        throw Napi::RangeError::New(env, "chunkDoc[" + std::to_string(row) + "] is not a doc index");
      if (doc_counts[size_t(doc)] < 1)
        throw Napi::RangeError::New(env, "docChunkCounts[" + std::to_string(doc) + "] < 1 for a doc with a match");
      hits.push_back({(uint64_t(uint32_t(doc)) << 32) | uint32_t(row), int32_t(q), scores[size_t(q * k + s)]});
    }
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.key < b.key; });

  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<Ranked> ranked;
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
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return a.key > b.key || (a.key == b.key && a.doc < b.doc);
  });

  auto docs = Napi::Int32Array::New(env, ranked.size());
  auto doc_scores = Napi::Float64Array::New(env, ranked.size());
  auto best_chunks = Napi::Int32Array::New(env, ranked.size());
  for (size_t i = 0; i < ranked.size(); i++) {
    docs[i] = ranked[i].doc;
    doc_scores[i] = ranked[i].score;
    best_chunks[i] = ranked[i].best_chunk;
  }
  auto result = Napi::Object::New(env);
  result.Set("docs", docs);
  result.Set("scores", doc_scores);
  result.Set("bestChunks", best_chunks);
  return result;
}

}  // namespace

void register_bimatch(Napi::Env env, Napi::Object exports) {
  exports.Set("biMatch", Napi::Function::New(env, BiMatch, "biMatch"));
}

}  // namespace flower
