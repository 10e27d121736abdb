// The N-API side of the addon: each *_binding.cc file checks the arguments of its entry points,
// calls an N-API-free core (topk.h, bimatch.h, eigen.h, matmul.h, ...) and registers the functions on the exports.
#pragma once
#include <napi.h>

namespace flower {

void register_chunk_extract(Napi::Env env, Napi::Object exports);
void register_topk(Napi::Env env, Napi::Object exports);
void register_bimatch(Napi::Env env, Napi::Object exports);
void register_eigen(Napi::Env env, Napi::Object exports);
void register_matmul(Napi::Env env, Napi::Object exports);
void register_mmap(Napi::Env env, Napi::Object exports);
void register_bandwidth(Napi::Env env, Napi::Object exports);
void register_controls(Napi::Env env, Napi::Object exports);

}  // namespace flower
