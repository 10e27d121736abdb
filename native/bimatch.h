// BiMatch doc ranking from one query's top-k chunk matches (the formula: D_MISS in
// src/kernels/types.ts). No N-API here: bimatch_binding.cc wraps it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flower {

struct RankedDoc {
  double key;  // the score, NaN (only from non-finite input scores) as -inf: ranks last, as in TS
  double score;
  int32_t doc;
  int32_t best_chunk;  // the doc's chunk row with the lowest distance (-1 when none is below +inf)
};

// `ids` and `scores` hold query_chunks x k top-k entries (ids < 0 are skipped); chunk_doc maps a
// chunk row to its doc, doc_counts a doc to its number of chunks. Best doc first, ties to the
// lower doc. Throws std::out_of_range for a row, doc or count those tables do not allow.
std::vector<RankedDoc> bimatch(const int32_t* ids, const float* scores, int64_t k, int64_t query_chunks,
                               const int32_t* chunk_doc, size_t chunk_rows, const int32_t* doc_counts, size_t docs);

}  // namespace flower
