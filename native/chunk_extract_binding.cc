// N-API entry point of chunk extraction: extractChunks(data, width, height, channels, origins,
// boxWidth, boxHeight, meanStd, out, firstSlot); every box and size is checked here, before
// chunk_extract.cc writes anything.
#include <string>

#include "args.h"
#include "bindings.h"
#include "chunk_extract.h"

namespace flower {
namespace {

Napi::Value ExtractChunks(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const auto image = typed_arg<uint8_t>(info, 0, "image.data");
  const int64_t width = int_arg(info, 1, "image.width", 1);
  const int64_t height = int_arg(info, 2, "image.height", 1);
  const int64_t channels = int_arg(info, 3, "image.channels", 1, 4);
  const auto origins = typed_arg<int32_t>(info, 4, "origins");
  const int64_t box_width = int_arg(info, 5, "box width", 1);
  const int64_t box_height = int_arg(info, 6, "box height", 1);
  const auto mean_std = typed_arg<double>(info, 7, "meanStd");
  auto out = typed_arg<float>(info, 8, "out");
  const int64_t first_slot = int_arg(info, 9, "firstSlot", 0);

  range_check(env, channels == 1 || channels == 3 || channels == 4, "image.channels must be 1, 3 or 4");
  range_check(env, int64_t(image.ElementLength()) >= width * height * channels,
              "image.data is smaller than width x height x channels");
  range_check(env, origins.ElementLength() % 2 == 0, "origins must hold (x, y) pairs");
  range_check(env, mean_std.ElementLength() == 6, "meanStd must hold 3 means and 3 stds");
  const int64_t boxes = int64_t(origins.ElementLength() / 2);
  const int64_t chunk_floats = 3 * box_width * box_height;
  range_check(env, int64_t(out.ElementLength()) >= (first_slot + boxes) * chunk_floats,
              "out is too small for the boxes at firstSlot");
  for (int64_t i = 0; i < boxes; i++) {
    const int64_t x = origins[size_t(2 * i)], y = origins[size_t(2 * i + 1)];
    if (x < 0 || y < 0 || x + box_width > width || y + box_height > height)
      throw Napi::RangeError::New(env, "box " + std::to_string(i) + " lies outside the image");
  }

  for (int c = 0; c < 3; c++) range_check(env, mean_std[size_t(3 + c)] != 0, "std must not be 0");
  extract_chunks(image.Data(), width, channels, origins.Data(), boxes, box_width, box_height, mean_std.Data(),
                 out.Data() + first_slot * chunk_floats);
  return env.Undefined();
}

}  // namespace

void register_chunk_extract(Napi::Env env, Napi::Object exports) {
  exports.Set("extractChunks", Napi::Function::New(env, ExtractChunks, "extractChunks"));
}

}  // namespace flower
