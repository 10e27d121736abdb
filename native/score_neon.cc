// NEON dot-product kernel for AArch64 (NEON is baseline there): 3 rows x up to 4 queries = 12
// float32x4 accumulators; the blocking is score_blocking.h's. No software prefetch: it was
// measured only on x86 (AVX2), so it stays off until someone measures it on Arm.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "score_blocking.h"
#include "score_kernels.h"

namespace flower {
namespace {

struct Neon {
  using Vec = float32x4_t;
  static constexpr int kLanes = 4;
  static constexpr int kRowBlock = 3;
  static constexpr bool kPrefetch = false;
  static Vec zero() { return vdupq_n_f32(0.0f); }
  static Vec load(const float* p) { return vld1q_f32(p); }
  static Vec fma(Vec a, Vec b, Vec acc) { return vfmaq_f32(acc, a, b); }
  static void prefetch(const float*) {}
  static float hsum(Vec v) { return vaddvq_f32(v); }
};

}  // namespace

void score_block_neon(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count,
                      float* scores) {
  score_block<Neon>(rows, row_count, dim, queries, query_count, scores);
}

}  // namespace flower
#endif  // __aarch64__
