// N-API entry point of the bandwidth probe: _memoryBandwidth(bytes, threads, repeats) ->
// { sumGBs: number[], copyGBs: number[], check }, one entry per repeat. Internal (a leading
// underscore): a benchmark tool, not a kernel.
#include "args.h"
#include "bandwidth.h"
#include "bindings.h"

namespace flower {
namespace {

Napi::Array to_js(Napi::Env env, const std::vector<double>& values) {
  auto array = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); i++) array.Set(uint32_t(i), Napi::Number::New(env, values[i]));
  return array;
}

Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int64_t bytes = int_arg(info, 0, "bytes", 1 << 20, int64_t(1) << 36);
  const int threads = int(int_arg(info, 1, "threads", 1, 256));
  const int repeats = int(int_arg(info, 2, "repeats", 1, 1000));
  const Bandwidth bandwidth = measure_bandwidth(bytes, threads, repeats);
  auto result = Napi::Object::New(env);
  result.Set("sumGBs", to_js(env, bandwidth.sum_gbs));
  result.Set("copyGBs", to_js(env, bandwidth.copy_gbs));
  result.Set("check", Napi::Number::New(env, double(bandwidth.check % 1024)));
  return result;
}

}  // namespace

void register_bandwidth(Napi::Env env, Napi::Object exports) {
  exports.Set("_memoryBandwidth", Napi::Function::New(env, MemoryBandwidth, "_memoryBandwidth"));
}

}  // namespace flower
