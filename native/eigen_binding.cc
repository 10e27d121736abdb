// N-API entry point of the symmetric eigendecomposition: symmetricEigen(a, n) -> { values,
// vectors }; the algorithm in eigen.cc.
#include <cmath>
#include <string>

#include "args.h"
#include "bindings.h"
#include "eigen.h"

namespace flower {
namespace {

// n x n doubles must fit a typed array and n * n an int32 index.
constexpr int64_t kMaxOrder = 46340;

Napi::Value SymmetricEigen(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const auto a = typed_arg<double>(info, 0, "a");
  const int64_t n = int_arg(info, 1, "n", 1, kMaxOrder);
  range_check(
      env, int64_t(a.ElementLength()) == n * n,
      "a holds " + std::to_string(a.ElementLength()) + " values, an n x n matrix needs " + std::to_string(n * n));
  for (size_t i = 0; i < a.ElementLength(); i++)
    range_check(env, std::isfinite(a[i]), "a[" + std::to_string(i) + "] is not finite");

  auto values = Napi::Float64Array::New(env, size_t(n));
  auto vectors = Napi::Float64Array::New(env, size_t(n * n));
  symmetric_eigen(a.Data(), n, values.Data(), vectors.Data());
  auto result = Napi::Object::New(env);
  result.Set("values", values);
  result.Set("vectors", vectors);
  return result;
}

}  // namespace

void register_eigen(Napi::Env env, Napi::Object exports) {
  exports.Set("symmetricEigen", Napi::Function::New(env, SymmetricEigen, "symmetricEigen"));
}

}  // namespace flower
