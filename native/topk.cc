#include "topk.h"

#include <algorithm>
#include <atomic>
#include <limits>

#include "parallel.h"
#include "simd_dispatch.h"

namespace flower {
namespace {

struct Candidate {
  float score;
  int32_t id;
};

inline bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// Rows scored per kernel call: a multiple of the kernels' row panels (12, 16); scores stay in L1.
constexpr int64_t kTileRows = 96;
// Below this many multiply-adds per thread, extra threads cost more than they save.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 20;
// Rows a thread takes at a time from the shared cursor (7.9 MB at 1280-d): small enough that the
// threads finish together when one core runs slower (a busy neighbour on a VM), large enough to
// keep each thread's stream sequential.
constexpr int64_t kChunkRows = kTileRows * 16;

// Rows [begin, end) into one thread's heaps: a bounded heap per query with the worst kept on top.
void scan(const float* matrix, int64_t begin, int64_t end, int64_t dim, const float* queries, int64_t query_count,
          int64_t slots, ScoreBlockFn score_block, std::vector<std::vector<Candidate>>& heaps) {
  std::vector<float> tile_scores(size_t(kTileRows * query_count));
  for (int64_t tile = begin; tile < end; tile += kTileRows) {
    const int64_t count = std::min(kTileRows, end - tile);
    score_block(matrix + tile * dim, count, dim, queries, query_count, tile_scores.data());
    for (int64_t q = 0; q < query_count; q++) {
      auto& heap = heaps[size_t(q)];
      // The lowest score the heap can still take: one compare turns away almost every row (NaN too).
      float floor = int64_t(heap.size()) < slots ? -std::numeric_limits<float>::infinity() : heap.front().score;
      for (int64_t r = 0; r < count; r++) {
        const Candidate candidate{tile_scores[size_t(r * query_count + q)], int32_t(tile + r)};
        if (!(candidate.score >= floor)) continue;
        if (int64_t(heap.size()) < slots) {
          heap.push_back(candidate);
          std::push_heap(heap.begin(), heap.end(), ranks_before);
        } else if (ranks_before(candidate, heap.front())) {
          std::pop_heap(heap.begin(), heap.end(), ranks_before);
          heap.back() = candidate;
          std::push_heap(heap.begin(), heap.end(), ranks_before);
        }
        if (int64_t(heap.size()) == slots) floor = heap.front().score;
      }
    }
  }
}

}  // namespace

TopK cosine_topk(const float* matrix, int64_t rows, int64_t dim, const float* queries, int64_t query_count, int64_t k,
                 int threads) {
  TopK result;
  result.k = std::min(k, rows);
  const int64_t slots = result.k;
  result.ids.assign(size_t(query_count * slots), -1);
  result.scores.assign(size_t(query_count * slots), -std::numeric_limits<float>::infinity());
  if (slots == 0 || query_count == 0) return result;

  const int64_t work = rows * dim * query_count;
  const int parts = int(
      std::max<int64_t>(1, std::min<int64_t>({threads, work / kMinWorkPerThread, (rows + kTileRows - 1) / kTileRows})));
  using Heaps = std::vector<std::vector<Candidate>>;  // one bounded heap per query
  std::vector<Heaps> heaps(static_cast<size_t>(parts), Heaps(static_cast<size_t>(query_count)));
  for (auto& part_heaps : heaps)
    for (auto& heap : part_heaps) heap.reserve(size_t(slots));
  const ScoreBlockFn score_block = active_score_block();
  std::atomic<int64_t> next_chunk{0};  // threads take chunks of rows until none are left
  run_parallel(parts, [&](int part) {
    for (;;) {
      const int64_t begin = next_chunk.fetch_add(kChunkRows);
      if (begin >= rows) break;
      scan(matrix, begin, std::min(rows, begin + kChunkRows), dim, queries, query_count, slots, score_block,
           heaps[size_t(part)]);
    }
  });

  std::vector<Candidate> merged;
  for (int64_t q = 0; q < query_count; q++) {
    merged.clear();
    for (auto& part_heaps : heaps)
      merged.insert(merged.end(), part_heaps[size_t(q)].begin(), part_heaps[size_t(q)].end());
    const size_t keep = std::min(merged.size(), size_t(slots));
    std::partial_sort(merged.begin(), merged.begin() + keep, merged.end(), ranks_before);
    for (size_t s = 0; s < keep; s++) {
      result.ids[size_t(q * slots) + s] = merged[s].id;
      result.scores[size_t(q * slots) + s] = merged[s].score;
    }
  }
  return result;
}

}  // namespace flower
