// The dot-product kernels, one per instruction set (score_*.cc). Kept free of standard-library
// includes: the SIMD files include only this and the intrinsics headers.
#pragma once
#include <stdint.h>

namespace flower {

// Scores of `row_count` consecutive matrix rows against `query_count` queries, all `dim` long:
// scores[r * query_count + q] = dot(rows[r], queries[q]). Each row's dot product is computed the
// same way wherever it falls in a tile, so equal rows always get equal scores.
using ScoreBlockFn = void (*)(const float* rows, int64_t row_count, int64_t dim, const float* queries,
                              int64_t query_count, float* scores);

void score_block_scalar(const float*, int64_t, int64_t, const float*, int64_t, float*);
#if defined(__x86_64__) || defined(_M_X64)
void score_block_avx2(const float*, int64_t, int64_t, const float*, int64_t, float*);
void score_block_avx512(const float*, int64_t, int64_t, const float*, int64_t, float*);
#endif
#if defined(__aarch64__)
void score_block_neon(const float*, int64_t, int64_t, const float*, int64_t, float*);
#endif

}  // namespace flower
