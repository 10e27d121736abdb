// Cosine top-k over a row-major matrix for several queries in one pass over the matrix. No N-API
// here: topk_binding.cc wraps it.
#pragma once
#include <cstdint>
#include <vector>

namespace flower {

struct TopK {
  int64_t k = 0;              // slots per query: min(k, rows)
  std::vector<int32_t> ids;   // queries x k, best first, -1 where unfilled
  std::vector<float> scores;  // queries x k, -inf where unfilled
};

// Higher score first, then lower id; NaN scores are never kept.
TopK cosine_topk(const float* matrix, int64_t rows, int64_t dim, const float* queries, int64_t query_count, int64_t k,
                 int threads);

}  // namespace flower
