// flower_native.node: registers every binding on the module's exports.
#include <napi.h>

#include "bindings.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace flower;
  register_chunk_extract(env, exports);
  register_topk(env, exports);
  register_bimatch(env, exports);
  register_eigen(env, exports);
  register_matmul(env, exports);
  register_mmap(env, exports);
  register_bandwidth(env, exports);
  register_controls(env, exports);
  return exports;
}

NODE_API_MODULE(flower_native, Init)
