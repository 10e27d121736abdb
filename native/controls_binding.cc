// The addon's settings: which SIMD path the dot products take and how many threads top-k uses.
// The setters are internal (a leading underscore): tests and the benchmark switch paths with them;
// the package is configured by $FLOWER_NATIVE_SIMD and $FLOWER_NATIVE_THREADS.
#include <stdexcept>

#include "args.h"
#include "bindings.h"
#include "simd_dispatch.h"
#include "threads.h"

namespace flower {
namespace {

Napi::Value ActiveSimd(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), simd_name(active_simd()));
}

Napi::Value SimdLevels(const Napi::CallbackInfo& info) {
  auto levels = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (auto simd : supported_simd()) levels.Set(i++, Napi::String::New(info.Env(), simd_name(simd)));
  return levels;
}

Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "SIMD level must be a string");
  try {
    set_active_simd(info[0].As<Napi::String>());
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), thread_count()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_thread_count(int(int_arg(info, 0, "threads", 1, 256)));
  return info.Env().Undefined();
}

}  // namespace

void register_controls(Napi::Env env, Napi::Object exports) {
  exports.Set("simd", Napi::Function::New(env, ActiveSimd, "simd"));
  exports.Set("simdLevels", Napi::Function::New(env, SimdLevels, "simdLevels"));
  exports.Set("_setSimd", Napi::Function::New(env, SetSimd, "_setSimd"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("_setThreads", Napi::Function::New(env, SetThreads, "_setThreads"));
}

}  // namespace flower
