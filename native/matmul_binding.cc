// N-API entry point of the dense row product: multiplyRows(a, b, dim) -> Float32Array (m x p);
// the loops in matmul.cc.
#include <string>

#include "args.h"
#include "bindings.h"
#include "matmul.h"
#include "threads.h"

namespace flower {
namespace {

Napi::Value MultiplyRows(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const auto a = typed_arg<float>(info, 0, "a");
  const auto b = typed_arg<float>(info, 1, "b");
  const int64_t dim = int_arg(info, 2, "dim", 1);
  range_check(env, a.ElementLength() % size_t(dim) == 0,
              "a holds " + std::to_string(a.ElementLength()) + " floats, not a multiple of dim " + std::to_string(dim));
  range_check(env, b.ElementLength() % size_t(dim) == 0,
              "b holds " + std::to_string(b.ElementLength()) + " floats, not a multiple of dim " + std::to_string(dim));
  const int64_t m = int64_t(a.ElementLength()) / dim;
  const int64_t p = int64_t(b.ElementLength()) / dim;
  range_check(env, m * p <= INT32_MAX, std::to_string(m) + " x " + std::to_string(p) + " is too large a result");
  auto out = Napi::Float32Array::New(env, size_t(m * p));
  multiply_rows(a.Data(), m, b.Data(), p, dim, out.Data(), thread_count());
  return out;
}

}  // namespace

void register_matmul(Napi::Env env, Napi::Object exports) {
  exports.Set("multiplyRows", Napi::Function::New(env, MultiplyRows, "multiplyRows"));
}

}  // namespace flower
