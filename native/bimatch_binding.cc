// N-API entry point of BiMatch: biMatch(ids, scores, k, queryChunks, chunkDoc, docChunkCounts)
// -> { docs, scores, bestChunks }; the algorithm in bimatch.cc.
#include <stdexcept>

#include "args.h"
#include "bimatch.h"
#include "bindings.h"

namespace flower {
namespace {

Napi::Value BiMatch(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const auto ids = typed_arg<int32_t>(info, 0, "topk.ids");
  const auto scores = typed_arg<float>(info, 1, "topk.scores");
  const int64_t k = int_arg(info, 2, "topk.k", 0);
  const int64_t query_chunks = int_arg(info, 3, "queryChunks", 0);
  const auto chunk_doc = typed_arg<int32_t>(info, 4, "chunkDoc");
  const auto doc_counts = typed_arg<int32_t>(info, 5, "docChunkCounts");
  range_check(env,
              int64_t(ids.ElementLength()) == query_chunks * k && int64_t(scores.ElementLength()) == query_chunks * k,
              "topk.ids/scores must hold queryChunks x k entries");

  std::vector<RankedDoc> ranked;
  try {
    ranked = bimatch(ids.Data(), scores.Data(), k, query_chunks, chunk_doc.Data(), chunk_doc.ElementLength(),
                     doc_counts.Data(), doc_counts.ElementLength());
  } catch (const std::out_of_range& e) {
    throw Napi::RangeError::New(env, e.what());
  }

  auto docs = Napi::Int32Array::New(env, ranked.size());
  auto doc_scores = Napi::Float64Array::New(env, ranked.size());
  auto best_chunks = Napi::Int32Array::New(env, ranked.size());
  for (size_t i = 0; i < ranked.size(); i++) {
    docs[i] = ranked[i].doc;
    doc_scores[i] = ranked[i].score;
    best_chunks[i] = ranked[i].best_chunk;
  }
  auto result = Napi::Object::New(env);
  result.Set("docs", docs);
  result.Set("scores", doc_scores);
  result.Set("bestChunks", best_chunks);
  return result;
}

}  // namespace

void register_bimatch(Napi::Env env, Napi::Object exports) {
  exports.Set("biMatch", Napi::Function::New(env, BiMatch, "biMatch"));
}

}  // namespace flower
