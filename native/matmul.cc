// Dense row products (see matmul.h) through the top-k's dot-product kernels: they are register
// and cache blocked already, and accumulate each pair in float32 in one fixed order. Here the rows
// of `a` go in tiles that stay in cache while every row of `b` passes them, threads taking tiles
// from a shared cursor. A product of rows with themselves (a gram matrix) computes the upper
// triangle only and mirrors it: the kernel multiplies and sums a_j, a_i exactly as it does a_i, a_j.
#include "matmul.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "parallel.h"
#include "simd_dispatch.h"

namespace flower {
namespace {

// Rows of `a` per kernel call: a multiple of the kernels' row blocks (3, 4) and panels (12).
constexpr int64_t kTileRows = 48;
// Below this many multiply-adds per thread, extra threads cost more than they save.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 22;

// Rows [begin, begin + count) of a x aᵀ: the products with rows begin.. into a scratch tile, then
// to their places above the diagonal and, mirrored, below it.
void gram_tile(ScoreBlockFn score_block, const float* a, int64_t m, int64_t dim, int64_t begin, int64_t count,
               float* out, std::vector<float>& tile) {
  const int64_t width = m - begin;
  tile.resize(size_t(count * width));
  score_block(a + begin * dim, count, dim, a + begin * dim, width, tile.data());
  for (int64_t r = 0; r < count; r++) {
    const int64_t i = begin + r;
    for (int64_t q = r; q < width; q++) {
      const int64_t j = begin + q;
      out[i * m + j] = tile[size_t(r * width + q)];
      out[j * m + i] = tile[size_t(r * width + q)];
    }
  }
}

}  // namespace

void multiply_rows(const float* a, int64_t m, const float* b, int64_t p, int64_t dim, float* out, int threads) {
  if (m == 0 || p == 0) return;
  const ScoreBlockFn score_block = active_score_block();
  const bool gram = a == b && m == p;
  const int64_t tiles = (m + kTileRows - 1) / kTileRows;
  const int64_t work = gram ? m * (m + 1) / 2 * dim : m * p * dim;
  const int parts = int(std::max<int64_t>(1, std::min<int64_t>({threads, work / kMinWorkPerThread, tiles})));
  std::atomic<int64_t> next_tile{0};
  run_parallel(parts, [&](int) {
    std::vector<float> scratch;
    for (int64_t tile; (tile = next_tile.fetch_add(1)) < tiles;) {
      const int64_t begin = tile * kTileRows;
      const int64_t count = std::min(kTileRows, m - begin);
      if (gram)
        gram_tile(score_block, a, m, dim, begin, count, out, scratch);
      else
        score_block(a + begin * dim, count, dim, b, p, out + begin * p);
    }
  });
}

}  // namespace flower
