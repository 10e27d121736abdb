// AVX2 + FMA dot-product kernel (this file alone is compiled with -mavx2 -mfma). Register
// blocked: 3 rows x up to 4 queries = 12 ymm accumulators, so every row loaded from memory
// feeds up to 4 queries' FMAs and the matrix is streamed once for all queries.
#include <immintrin.h>

#include "score_kernels.h"

namespace flower {
namespace {

constexpr int kRowBlock = 3;
constexpr int kQueryBlock = 4;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R, int Q>
void tile(const float* rows, int64_t dim, const float* queries, int64_t query_count, float* scores) {
  __m256 acc[R][Q];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) acc[r][q] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    __m256 row[R];
    for (int r = 0; r < R; r++) row[r] = _mm256_loadu_ps(rows + r * dim + j);
    for (int q = 0; q < Q; q++) {
      const __m256 query = _mm256_loadu_ps(queries + q * dim + j);
      for (int r = 0; r < R; r++) acc[r][q] = _mm256_fmadd_ps(row[r], query, acc[r][q]);
    }
  }
  for (int r = 0; r < R; r++) {
    for (int q = 0; q < Q; q++) {
      float sum = hsum(acc[r][q]);
      for (int64_t t = j; t < dim; t++) sum += rows[r * dim + t] * queries[q * dim + t];
      scores[r * query_count + q] = sum;
    }
  }
}

template <int R>
void row_group(const float* rows, int64_t dim, const float* queries, int64_t query_count, float* scores) {
  int64_t q = 0;
  for (; q + kQueryBlock <= query_count; q += kQueryBlock)
    tile<R, kQueryBlock>(rows, dim, queries + q * dim, query_count, scores + q);
  switch (query_count - q) {
    case 3: tile<R, 3>(rows, dim, queries + q * dim, query_count, scores + q); break;
    case 2: tile<R, 2>(rows, dim, queries + q * dim, query_count, scores + q); break;
    case 1: tile<R, 1>(rows, dim, queries + q * dim, query_count, scores + q); break;
  }
}

}  // namespace

void score_block_avx2(const float* rows, int64_t row_count, int64_t dim, const float* queries,
                      int64_t query_count, float* scores) {
  int64_t r = 0;
  for (; r + kRowBlock <= row_count; r += kRowBlock)
    row_group<kRowBlock>(rows + r * dim, dim, queries, query_count, scores + r * query_count);
  for (; r < row_count; r++) row_group<1>(rows + r * dim, dim, queries, query_count, scores + r * query_count);
}

}  // namespace flower
