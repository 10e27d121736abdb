// flower_native.node: registers the kernels and the SIMD/thread controls.
#include <napi.h>

#include <stdexcept>

#include "args.h"
#include "kernels.h"
#include "parallel.h"
#include "simd_dispatch.h"

namespace flower {
namespace {

Napi::Value ActiveSimd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), simd_name(active_simd())); }

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

}  // namespace
}  // namespace flower

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace flower;
  register_chunk_extract(env, exports);
  register_topk(env, exports);
  register_bimatch(env, exports);
  register_mmap(env, exports);
  register_bandwidth(env, exports);
  exports.Set("simd", Napi::Function::New(env, ActiveSimd, "simd"));
  exports.Set("simdLevels", Napi::Function::New(env, SimdLevels, "simdLevels"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  return exports;
}

NODE_API_MODULE(flower_native, Init)
