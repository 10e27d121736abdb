// AVX-512F dot-product kernel (this file alone is compiled with -mavx512f -mfma).
// Register blocked (4 rows x up to 4 queries = 16 zmm accumulators) and blocked over the
// dimension: for each slice of it, a panel of rows runs against every query's slice while those
// stay in cache (measured here: for 1280-d rows whole rows beat 1 KB slices, 59-64 vs 66-75 ms
// of CPU for 100k rows x 7 queries). The matrix streams from memory once for up to kMaxQueries
// queries, and every row loaded feeds up to 4 queries' FMAs. Each (row, query) has one
// accumulator filled in dimension order whatever the tile shape, so equal rows score equal.
#include <immintrin.h>

#include "score_kernels.h"

namespace flower {
namespace {

constexpr int kRowBlock = 4;
constexpr int kQueryBlock = 4;
constexpr int kLanes = 16;
constexpr int64_t kDimChunk = 2048;  // floats per slice (8 KB): 1280-d rows go whole, longer ones in slices
constexpr int64_t kMaxQueries = 32;  // queries per pass over the matrix (bounds the state below)
constexpr int64_t kPanelRows = 16;  // rows sharing one pass over the queries' dimension chunks
// Software prefetch of the rows this far ahead, one line (64 bytes) per step, as in
// score_avx2.cc (measured there only: this path cannot run on the AVX2 machine). Prefetching
// past the matrix end cannot fault.
constexpr int64_t kPrefetchRows = 24;

inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// Accumulates rows x queries over [begin, end) of the dimension into state[r * stride + q].
template <int R, int Q, bool Prefetch = false>
void tile(const float* rows, int64_t dim, const float* queries, int64_t begin, int64_t end, __m512* state, int64_t stride) {
  __m512 acc[R][Q];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) acc[r][q] = begin == 0 ? _mm512_setzero_ps() : state[r * stride + q];
  for (int64_t j = begin; j < end; j += kLanes) {
    __m512 row[R];
    for (int r = 0; r < R; r++) row[r] = _mm512_loadu_ps(rows + r * dim + j);
    if (Prefetch)
      for (int r = 0; r < R; r++) _mm_prefetch((const char*)(rows + (r + kPrefetchRows) * dim + j), _MM_HINT_T0);
    for (int q = 0; q < Q; q++) {
      const __m512 query = _mm512_loadu_ps(queries + q * dim + j);
      for (int r = 0; r < R; r++) acc[r][q] = _mm512_fmadd_ps(row[r], query, acc[r][q]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) state[r * stride + q] = acc[r][q];
}

template <int R, bool Prefetch>
void query_block(const float* rows, int64_t dim, const float* queries, int64_t count, int64_t begin, int64_t end, __m512* state) {
  switch (count) {
    case 4: tile<R, 4, Prefetch>(rows, dim, queries, begin, end, state, kMaxQueries); break;
    case 3: tile<R, 3, Prefetch>(rows, dim, queries, begin, end, state, kMaxQueries); break;
    case 2: tile<R, 2, Prefetch>(rows, dim, queries, begin, end, state, kMaxQueries); break;
    case 1: tile<R, 1, Prefetch>(rows, dim, queries, begin, end, state, kMaxQueries); break;
  }
}

// R rows against every query, over [begin, end) of the dimension. The first query block also
// prefetches the rows kPrefetchRows ahead.
template <int R>
void query_blocks(const float* rows, int64_t dim, const float* queries, int64_t query_count, int64_t begin, int64_t end, __m512* state) {
  const int64_t first = query_count < kQueryBlock ? query_count : kQueryBlock;
  query_block<R, true>(rows, dim, queries, first, begin, end, state);
  for (int64_t q = first; q < query_count; q += kQueryBlock) {
    const int64_t count = query_count - q < kQueryBlock ? query_count - q : kQueryBlock;
    query_block<R, false>(rows, dim, queries + q * dim, count, begin, end, state + q);
  }
}

// Up to kPanelRows rows against query_count (<= kMaxQueries) queries; scores[r * score_stride + q].
// Per dimension chunk, the queries' slices stay in L1 while every row group of the panel uses them.
void panel(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count, float* scores,
           int64_t score_stride) {
  __m512 state[kPanelRows * kMaxQueries];
  const int64_t vector_end = dim - dim % kLanes;
  for (int64_t begin = 0; begin < vector_end; begin += kDimChunk) {
    const int64_t end = begin + kDimChunk < vector_end ? begin + kDimChunk : vector_end;
    int64_t r = 0;
    for (; r + kRowBlock <= row_count; r += kRowBlock)
      query_blocks<kRowBlock>(rows + r * dim, dim, queries, query_count, begin, end, state + r * kMaxQueries);
    for (; r < row_count; r++) query_blocks<1>(rows + r * dim, dim, queries, query_count, begin, end, state + r * kMaxQueries);
  }
  for (int64_t r = 0; r < row_count; r++) {
    for (int64_t q = 0; q < query_count; q++) {
      float sum = vector_end > 0 ? hsum(state[r * kMaxQueries + q]) : 0.0f;
      for (int64_t t = vector_end; t < dim; t++) sum += rows[r * dim + t] * queries[q * dim + t];
      scores[r * score_stride + q] = sum;
    }
  }
}

}  // namespace

void score_block_avx512(const float* rows, int64_t row_count, int64_t dim, const float* queries,
                      int64_t query_count, float* scores) {
  for (int64_t q0 = 0; q0 < query_count; q0 += kMaxQueries) {
    const int64_t count_q = query_count - q0 < kMaxQueries ? query_count - q0 : kMaxQueries;
    const float* pass_queries = queries + q0 * dim;
    for (int64_t r = 0; r < row_count; r += kPanelRows) {
      const int64_t count = row_count - r < kPanelRows ? row_count - r : kPanelRows;
      panel(rows + r * dim, count, dim, pass_queries, count_q, scores + r * query_count + q0, query_count);
    }
  }
}

}  // namespace flower
