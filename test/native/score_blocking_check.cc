// Runs score_blocking.h (the blocking every SIMD kernel shares) with plain-C++ vector types shaped
// like each instruction set's, against a naive dot product. This covers the AVX-512 and NEON
// shapes (16 lanes x 4-row blocks, 4 lanes x 3-row blocks) on machines that cannot execute those
// instructions; the intrinsics each kernel maps load/fma/hsum onto are one line apiece.
// Built and run by test/kernels-blocking.test.ts. Exit status 0 and "checked N shapes" on success.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "score_blocking.h"

namespace {

template <int Lanes, int RowBlock, bool Prefetch>
struct Emulated {
  struct Vec {
    float lane[Lanes];
  };
  static constexpr int kLanes = Lanes;
  static constexpr int kRowBlock = RowBlock;
  static constexpr bool kPrefetch = Prefetch;
  static Vec zero() { return Vec{}; }
  static Vec load(const float* p) {
    Vec v;
    for (int l = 0; l < Lanes; l++) v.lane[l] = p[l];
    return v;
  }
  static Vec fma(Vec a, Vec b, Vec acc) {
    for (int l = 0; l < Lanes; l++) acc.lane[l] += a.lane[l] * b.lane[l];
    return acc;
  }
  static void prefetch(const float*) {}  // the address may lie past the matrix: never dereferenced
  static float hsum(Vec v) {
    float sum = 0;
    for (int l = 0; l < Lanes; l++) sum += v.lane[l];
    return sum;
  }
};

unsigned state = 12345;
int next_int(int min, int max) {  // xorshift32: reproducible shapes and values
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return min + int(state % unsigned(max - min + 1));
}

// Entries are multiples of 1/4 in [-0.75, 0.75]: every dot product here is exact in float32, so
// any summation order must give exactly the naive result.
template <typename V>
bool check(const char* shape, int64_t rows, int64_t dim, int64_t queries) {
  std::vector<float> matrix(size_t(rows * dim)), query(size_t(queries * dim));
  for (float& x : matrix) x = float(next_int(-3, 3)) / 4;
  for (float& x : query) x = float(next_int(-3, 3)) / 4;
  std::vector<float> scores(size_t(rows * queries), -1e30f);
  flower::score_block<V>(matrix.data(), rows, dim, query.data(), queries, scores.data());
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t q = 0; q < queries; q++) {
      float expected = 0;
      for (int64_t j = 0; j < dim; j++) expected += matrix[size_t(r * dim + j)] * query[size_t(q * dim + j)];
      const float got = scores[size_t(r * queries + q)];
      if (got != expected) {
        std::printf("%s: rows %lld dim %lld queries %lld: score[%lld][%lld] = %g, expected %g\n", shape,
                    (long long)rows, (long long)dim, (long long)queries, (long long)r, (long long)q, double(got),
                    double(expected));
        return false;
      }
    }
  }
  return true;
}

}  // namespace

int main() {
  int shapes = 0;
  for (int round = 0; round < 150; round++) {
    // Rows across panel (12) and row-block edges, dims across lane and 2048-float slice edges,
    // queries across the 4-query blocks and the 32-query passes.
    const int64_t rows = next_int(0, 40);
    const int64_t dim = round % 10 == 0 ? next_int(2040, 2300) : next_int(1, 300);
    const int64_t queries = round % 5 == 0 ? next_int(30, 70) : next_int(0, 9);
    const bool ok = check<Emulated<16, 4, true>>("avx512 shape", rows, dim, queries) &&
                    check<Emulated<8, 3, true>>("avx2 shape", rows, dim, queries) &&
                    check<Emulated<4, 3, false>>("neon shape", rows, dim, queries);
    if (!ok) return 1;
    shapes += 3;
  }
  std::printf("checked %d shapes\n", shapes);
  return 0;
}
