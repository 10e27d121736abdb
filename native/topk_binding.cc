// N-API entry points of top-k: cosineTopK (on the caller's thread) and cosineTopKAsync (off the
// event loop); argument checks here, the algorithm in topk.cc.
#include <algorithm>

#include "args.h"
#include "bindings.h"
#include "threads.h"
#include "topk.h"

namespace flower {
namespace {

struct TopKArgs {
  Napi::Float32Array matrix, queries;
  int64_t rows, dim, query_count, k;
};

TopKArgs parse_args(const Napi::CallbackInfo& info) {
  TopKArgs args{typed_arg<float>(info, 0, "matrix"),
                typed_arg<float>(info, 3, "queries"),
                int_arg(info, 1, "rows", 0),
                int_arg(info, 2, "dim", 1),
                0,
                int_arg(info, 4, "k", 0)};
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
  return to_js(info.Env(),
               cosine_topk(a.matrix.Data(), a.rows, a.dim, a.queries.Data(), a.query_count, a.k, thread_count()));
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
        matrix_(args.matrix.Data()),
        queries_(args.queries.Data()),
        rows_(args.rows),
        dim_(args.dim),
        query_count_(args.query_count),
        k_(args.k),
        threads_(thread_count()) {}

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

}  // namespace

void register_topk(Napi::Env env, Napi::Object exports) {
  exports.Set("cosineTopK", Napi::Function::New(env, CosineTopK, "cosineTopK"));
  exports.Set("cosineTopKAsync", Napi::Function::New(env, CosineTopKAsync, "cosineTopKAsync"));
}

}  // namespace flower
