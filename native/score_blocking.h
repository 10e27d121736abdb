// The blocking shared by the SIMD dot-product kernels (score_avx2.cc, score_avx512.cc,
// score_neon.cc). Each of those files supplies a small traits struct (vector type, lanes, rows per
// register block, load, FMA, horizontal sum, prefetch) and instantiates score_block<Traits>() under
// its own compile flags.
//
// Register blocked (V::kRowBlock rows x up to kQueryBlock queries of accumulators) and blocked over
// the dimension: for each slice of it, a panel of rows runs against every query's slice while those
// stay in cache (measured here: for 1280-d rows whole rows beat 1 KB slices, 59-64 vs 66-75 ms of
// CPU for 100k rows x 7 queries). The matrix streams from memory once for up to kMaxQueries
// queries, and every row loaded feeds up to kQueryBlock queries' FMAs. Each (row, query) has one
// accumulator filled in dimension order whatever the tile shape, so equal rows score equal.
//
// Everything here sits in an anonymous namespace: every including file gets its own copies,
// compiled with its own instruction set, so the linker can never merge an AVX body into another path.
#pragma once
#include <stdint.h>

namespace flower {
namespace {

constexpr int kQueryBlock = 4;
constexpr int64_t kDimChunk = 2048;  // floats per slice (8 KB): 1280-d rows go whole, longer ones in slices
constexpr int64_t kMaxQueries = 32;  // queries per pass over the matrix (bounds the panel state)
constexpr int64_t kPanelRows = 12;   // rows sharing one pass over the queries' dimension chunks
// Software prefetch distance (rows ahead of the ones being scored), one line per 64 bytes (16
// floats): the hardware prefetcher alone lets compute and the memory stream take turns (measured
// here with AVX2, 100k x 1280: Q = 7 27.1 -> 23.2 ms, Q = 1 16.8 -> 15.8 ms). Prefetching past the
// matrix end cannot fault.
constexpr int64_t kPrefetchRows = 16;

// Accumulates R rows x Q queries over [begin, end) of the dimension into state[r * kMaxQueries + q].
// Rows whose bit is set in prefetch_rows also prefetch their line kPrefetchRows rows ahead.
template <typename V, int R, int Q>
void tile(const float* rows, int64_t dim, const float* queries, int64_t begin, int64_t end, typename V::Vec* state,
          unsigned prefetch_rows) {
  typename V::Vec acc[R][Q];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) acc[r][q] = begin == 0 ? V::zero() : state[r * kMaxQueries + q];
  for (int64_t j = begin; j < end; j += V::kLanes) {
    typename V::Vec row[R];
    for (int r = 0; r < R; r++) row[r] = V::load(rows + r * dim + j);
    if (V::kPrefetch && (j & 15) == 0)
      for (int r = 0; r < R; r++)
        if (prefetch_rows >> r & 1) V::prefetch(rows + (r + kPrefetchRows) * dim + j);
    for (int q = 0; q < Q; q++) {
      const typename V::Vec query = V::load(queries + q * dim + j);
      for (int r = 0; r < R; r++) acc[r][q] = V::fma(row[r], query, acc[r][q]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) state[r * kMaxQueries + q] = acc[r][q];
}

template <typename V, int R>
void query_block(const float* rows, int64_t dim, const float* queries, int64_t count, int64_t begin, int64_t end,
                 typename V::Vec* state, unsigned prefetch_rows) {
  switch (count) {
    case 4: tile<V, R, 4>(rows, dim, queries, begin, end, state, prefetch_rows); break;
    case 3: tile<V, R, 3>(rows, dim, queries, begin, end, state, prefetch_rows); break;
    case 2: tile<V, R, 2>(rows, dim, queries, begin, end, state, prefetch_rows); break;
    case 1: tile<V, R, 1>(rows, dim, queries, begin, end, state, prefetch_rows); break;
  }
}
static_assert(kQueryBlock == 4, "query_block dispatches tiles of 1 to 4 queries");

// R rows against every query, over [begin, end) of the dimension. Where the instruction set has a
// prefetch, the rows kPrefetchRows ahead are prefetched, their lines shared out among the query
// blocks (row r in block r % blocks) so that the memory stream keeps going through every block
// rather than in bursts during the first (measured here, AVX2, 100k x 1280, two builds loaded side
// by side: Q = 7 faster in 18 of 20 paired runs, by ~1.5 ms or 5 % typically; Q = 1 unchanged).
template <typename V, int R>
void query_blocks(const float* rows, int64_t dim, const float* queries, int64_t query_count, int64_t begin, int64_t end,
                  typename V::Vec* state) {
  const int64_t blocks = (query_count + kQueryBlock - 1) / kQueryBlock;
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t q = b * kQueryBlock;
    const int64_t count = query_count - q < kQueryBlock ? query_count - q : kQueryBlock;
    unsigned prefetch_rows = 0;
    for (int r = 0; r < R; r++)
      if (r % blocks == b) prefetch_rows |= 1u << r;
    query_block<V, R>(rows, dim, queries + q * dim, count, begin, end, state + q, prefetch_rows);
  }
}

// Up to kPanelRows rows against query_count (<= kMaxQueries) queries; scores[r * score_stride + q].
// Per dimension chunk, the queries' slices stay in L1 while every row group of the panel uses them.
template <typename V>
void panel(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count, float* scores,
           int64_t score_stride) {
  typename V::Vec state[kPanelRows * kMaxQueries];
  const int64_t vector_end = dim - dim % V::kLanes;
  for (int64_t begin = 0; begin < vector_end; begin += kDimChunk) {
    const int64_t end = begin + kDimChunk < vector_end ? begin + kDimChunk : vector_end;
    int64_t r = 0;
    for (; r + V::kRowBlock <= row_count; r += V::kRowBlock)
      query_blocks<V, V::kRowBlock>(rows + r * dim, dim, queries, query_count, begin, end, state + r * kMaxQueries);
    for (; r < row_count; r++)
      query_blocks<V, 1>(rows + r * dim, dim, queries, query_count, begin, end, state + r * kMaxQueries);
  }
  for (int64_t r = 0; r < row_count; r++) {
    for (int64_t q = 0; q < query_count; q++) {
      float sum = vector_end > 0 ? V::hsum(state[r * kMaxQueries + q]) : 0.0f;
      for (int64_t t = vector_end; t < dim; t++) sum += rows[r * dim + t] * queries[q * dim + t];
      scores[r * score_stride + q] = sum;
    }
  }
}

// The ScoreBlockFn contract (score_kernels.h) for one instruction set.
template <typename V>
void score_block(const float* rows, int64_t row_count, int64_t dim, const float* queries, int64_t query_count,
                 float* scores) {
  for (int64_t q0 = 0; q0 < query_count; q0 += kMaxQueries) {
    const int64_t count_q = query_count - q0 < kMaxQueries ? query_count - q0 : kMaxQueries;
    const float* pass_queries = queries + q0 * dim;
    for (int64_t r = 0; r < row_count; r += kPanelRows) {
      const int64_t count = row_count - r < kPanelRows ? row_count - r : kPanelRows;
      panel<V>(rows + r * dim, count, dim, pass_queries, count_q, scores + r * query_count + q0, query_count);
    }
  }
}

}  // namespace
}  // namespace flower
