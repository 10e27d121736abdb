// AVX2 + FMA dot-product kernel (this file alone is compiled with -mavx2 -mfma): 3 rows x up to
// 4 queries = 12 ymm accumulators; the blocking is score_blocking.h's.
#include <immintrin.h>

#include "score_blocking.h"
#include "score_kernels.h"

namespace flower {
namespace {

struct Avx2 {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kRowBlock = 3;
  static constexpr bool kPrefetch = true;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static float hsum(Vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace

void score_block_avx2(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count,
                      float* scores) {
  score_block<Avx2>(rows, row_count, dim, queries, query_count, scores);
}

}  // namespace flower
