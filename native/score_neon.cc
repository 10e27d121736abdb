// NEON dot-product kernel for AArch64 (NEON is part of the baseline there). Register blocked
// like the AVX2 kernel: 3 rows x up to 4 queries = 12 float32x4 accumulators.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "score_kernels.h"

namespace flower {
namespace {

constexpr int kRowBlock = 3;
constexpr int kQueryBlock = 4;

template <int R, int Q>
void tile(const float* rows, int64_t dim, const float* queries, int64_t query_count, float* scores) {
  float32x4_t acc[R][Q];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) acc[r][q] = vdupq_n_f32(0.0f);
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    float32x4_t row[R];
    for (int r = 0; r < R; r++) row[r] = vld1q_f32(rows + r * dim + j);
    for (int q = 0; q < Q; q++) {
      const float32x4_t query = vld1q_f32(queries + q * dim + j);
      for (int r = 0; r < R; r++) acc[r][q] = vfmaq_f32(acc[r][q], row[r], query);
    }
  }
  for (int r = 0; r < R; r++) {
    for (int q = 0; q < Q; q++) {
      float sum = vaddvq_f32(acc[r][q]);
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

void score_block_neon(const float* rows, int64_t row_count, int64_t dim, const float* queries,
                      int64_t query_count, float* scores) {
  int64_t r = 0;
  for (; r + kRowBlock <= row_count; r += kRowBlock)
    row_group<kRowBlock>(rows + r * dim, dim, queries, query_count, scores + r * query_count);
  for (; r < row_count; r++) row_group<1>(rows + r * dim, dim, queries, query_count, scores + r * query_count);
}

}  // namespace flower
#endif  // __aarch64__
