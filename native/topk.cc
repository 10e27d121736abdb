#include "topk.h"

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <limits>

#include "args.h"
#include "kernels.h"
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
void scan(const float* matrix, int64_t begin, int64_t end, int64_t dim, const float* queries,
          int64_t query_count, int64_t slots, ScoreBlockFn score_block, std::vector<std::vector<Candidate>>& heaps) {
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

TopK cosine_topk(const float* matrix, int64_t rows, int64_t dim, const float* queries, int64_t query_count,
                 int64_t k, int threads) {
  TopK result;
  result.k = std::min(k, rows);
  const int64_t slots = result.k;
  result.ids.assign(size_t(query_count * slots), -1);
  result.scores.assign(size_t(query_count * slots), -std::numeric_limits<float>::infinity());
  if (slots == 0 || query_count == 0) return result;

  const int64_t work = rows * dim * query_count;
  const int parts = int(std::max<int64_t>(1, std::min<int64_t>({threads, work / kMinWorkPerThread, (rows + kTileRows - 1) / kTileRows})));
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
      scan(matrix, begin, std::min(rows, begin + kChunkRows), dim, queries, query_count, slots, score_block, heaps[size_t(part)]);
    }
  });

  std::vector<Candidate> merged;
  for (int64_t q = 0; q < query_count; q++) {
    merged.clear();
    for (auto& part_heaps : heaps) merged.insert(merged.end(), part_heaps[size_t(q)].begin(), part_heaps[size_t(q)].end());
    const size_t keep = std::min(merged.size(), size_t(slots));
    std::partial_sort(merged.begin(), merged.begin() + keep, merged.end(), ranks_before);
    for (size_t s = 0; s < keep; s++) {
      result.ids[size_t(q * slots) + s] = merged[s].id;
      result.scores[size_t(q * slots) + s] = merged[s].score;
    }
  }
  return result;
}

namespace {

struct TopKArgs {
  Napi::Float32Array matrix, queries;
  int64_t rows, dim, query_count, k;
};

TopKArgs parse_args(const Napi::CallbackInfo& info) {
  TopKArgs args{typed_arg<float>(info, 0, "matrix"), typed_arg<float>(info, 3, "queries"),
                int_arg(info, 1, "rows", 0), int_arg(info, 2, "dim", 1), 0, int_arg(info, 4, "k", 0)};
  const Napi::Env env = info.Env();
  range_check(env, int64_t(args.matrix.ElementLength()) >= args.rows * args.dim,
              "matrix holds " + std::to_string(args.matrix.ElementLength()) + " floats, rows x dim need " +
                  std::to_string(args.rows * args.dim));
  range_check(env, args.queries.ElementLength() % size_t(args.dim) == 0,
              "queries length is not a multiple of dim (dimension mismatch)");
  args.query_count = int64_t(args.queries.ElementLength()) / args.dim;
  range_check(env, args.query_count * std::min(args.k, args.rows) <= INT32_MAX, "queries x k is too large a result");
  return args;
}

Napi::Object to_js(Napi::Env env, const TopK& topk) {
  auto ids = Napi::Int32Array::New(env, topk.ids.size());
  auto scores = Napi::Float32Array::New(env, topk.scores.size());
  std::copy(topk.ids.begin(), topk.ids.end(), ids.Data());
  std::copy(topk.scores.begin(), topk.scores.end(), scores.Data());
  auto result = Napi::Object::New(env);
  result.Set("k", Napi::Number::New(env, double(topk.k)));
  result.Set("ids", ids);
  result.Set("scores", scores);
  return result;
}

Napi::Value CosineTopK(const Napi::CallbackInfo& info) {
  const TopKArgs a = parse_args(info);
  return to_js(info.Env(), cosine_topk(a.matrix.Data(), a.rows, a.dim, a.queries.Data(), a.query_count, a.k, thread_count()));
}

// Runs on the libuv pool (and its own threads); holds references to the input arrays so they
// stay alive until the promise settles.
class TopKWorker : public Napi::AsyncWorker {
 public:
  TopKWorker(Napi::Env env, const TopKArgs& args)
      : Napi::AsyncWorker(env, "flowerNativeTopK"),
        deferred_(Napi::Promise::Deferred::New(env)),
        matrix_ref_(Napi::Persistent(args.matrix)),
        queries_ref_(Napi::Persistent(args.queries)),
        matrix_(args.matrix.Data()), queries_(args.queries.Data()),
        rows_(args.rows), dim_(args.dim), query_count_(args.query_count), k_(args.k), threads_(thread_count()) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = cosine_topk(matrix_, rows_, dim_, queries_, query_count_, k_, threads_); }
  void OnOK() override { deferred_.Resolve(to_js(Env(), result_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float32Array> matrix_ref_, queries_ref_;
  const float* matrix_;
  const float* queries_;
  int64_t rows_, dim_, query_count_, k_;
  int threads_;
  TopK result_;
};

Napi::Value CosineTopKAsync(const Napi::CallbackInfo& info) {
  const TopKArgs args = parse_args(info);
  auto* worker = new TopKWorker(info.Env(), args);  // deletes itself once done
  const Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

int default_threads() {
  if (const char* env = std::getenv("FLOWER_NATIVE_THREADS")) {
    const int threads = std::atoi(env);
    if (threads >= 1) return std::min(threads, 256);
  }
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

int& configured_threads() {
  static int threads = default_threads();
  return threads;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_thread_count(int(int_arg(info, 0, "threads", 1, 256)));
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), thread_count()); }

}  // namespace

int thread_count() { return configured_threads(); }
void set_thread_count(int threads) { configured_threads() = threads; }

void register_topk(Napi::Env env, Napi::Object exports) {
  exports.Set("cosineTopK", Napi::Function::New(env, CosineTopK, "cosineTopK"));
  exports.Set("cosineTopKAsync", Napi::Function::New(env, CosineTopKAsync, "cosineTopKAsync"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
}

}  // namespace flower
