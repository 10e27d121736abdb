// Dense product of two sets of rows, the products of the ranking-state fit (gram matrix,
// projections). No N-API here: matmul_binding.cc wraps it.
#pragma once
#include <cstdint>

namespace flower {

// out[i * p + j] = dot(a_i, b_j) for the m rows of `a` and the p rows of `b`, all `dim` long, on up
// to `threads` threads. Each product is the active SIMD kernel's (score_kernels.h), so it equals,
// bit for bit, the score top-k gives the same pair.
void multiply_rows(const float* a, int64_t m, const float* b, int64_t p, int64_t dim, float* out, int threads);

}  // namespace flower
