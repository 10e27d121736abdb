// Each kernel file registers its N-API functions on the module's exports.
#pragma once
#include <napi.h>

namespace flower {

void register_chunk_extract(Napi::Env env, Napi::Object exports);
void register_topk(Napi::Env env, Napi::Object exports);
void register_bimatch(Napi::Env env, Napi::Object exports);
void register_mmap(Napi::Env env, Napi::Object exports);
void register_bandwidth(Napi::Env env, Napi::Object exports);

}  // namespace flower
