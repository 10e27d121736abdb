// Portable dot-product kernel: the baseline path (plain C++, no instruction-set flags; the
// compiler may use the architecture's baseline vectors, e.g. SSE2, for the independent lanes).
#include "score_kernels.h"

namespace flower {

namespace {
constexpr int kLanes = 8;  // independent partial sums per dot product, fixed for reproducibility

float dot(const float* a, const float* b, int64_t dim) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= dim; j += kLanes)
    for (int l = 0; l < kLanes; l++) lanes[l] += a[j + l] * b[j + l];
  float sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (; j < dim; j++) sum += a[j] * b[j];
  return sum;
}
}  // namespace

void score_block_scalar(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count,
                        float* scores) {
  for (int64_t r = 0; r < row_count; r++)
    for (int64_t q = 0; q < query_count; q++) scores[r * query_count + q] = dot(rows + r * dim, queries + q * dim, dim);
}

}  // namespace flower
