// AVX-512F dot-product kernel (this file alone is compiled with -mavx512f -mfma): 4 rows x up to
// 4 queries = 16 zmm accumulators; the blocking is score_blocking.h's. Same structure as the AVX2
// kernel, which is the one measured here (this machine has no AVX-512).
#include <immintrin.h>

#include "score_blocking.h"
#include "score_kernels.h"

namespace flower {
namespace {

struct Avx512 {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRowBlock = 4;
  static constexpr bool kPrefetch = true;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static float hsum(Vec v) { return _mm512_reduce_add_ps(v); }
};

}  // namespace

void score_block_avx512(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count,
                        float* scores) {
  score_block<Avx512>(rows, row_count, dim, queries, query_count, scores);
}

}  // namespace flower
