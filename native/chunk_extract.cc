// Crop + HWC->CHW + normalize in one pass per box. Normalization goes through a 256-entry table
// per channel computed exactly as the TS reference does ((x / 255 - mean) / std in double, then
// float), so native and TS batches are bit-identical; per pixel it is then three loads and stores.
#include <cstring>
#include <string>

#include "args.h"
#include "kernels.h"

namespace flower {
namespace {

using Table = float[3][256];

template <int Channels>
void extract_box(const uint8_t* image, int64_t width, int64_t x0, int64_t y0, int64_t box_width,
                 int64_t box_height, const Table& table, float* out) {
  const int64_t plane = box_width * box_height;
  float* planes[3] = {out, out + plane, out + 2 * plane};
  // Gray is replicated to R, G and B; RGBA drops alpha.
  constexpr int offset1 = Channels == 1 ? 0 : 1, offset2 = Channels == 1 ? 0 : 2;
  for (int64_t y = 0; y < box_height; y++) {
    const uint8_t* src = image + ((y0 + y) * width + x0) * Channels;
    float* r = planes[0] + y * box_width;
    float* g = planes[1] + y * box_width;
    float* b = planes[2] + y * box_width;
    for (int64_t x = 0; x < box_width; x++, src += Channels) {
      r[x] = table[0][src[0]];
      g[x] = table[1][src[offset1]];
      b[x] = table[2][src[offset2]];
    }
  }
}

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
  range_check(env, int64_t(image.ElementLength()) >= width * height * channels, "image.data is smaller than width x height x channels");
  range_check(env, origins.ElementLength() % 2 == 0, "origins must hold (x, y) pairs");
  range_check(env, mean_std.ElementLength() == 6, "meanStd must hold 3 means and 3 stds");
  const int64_t boxes = int64_t(origins.ElementLength() / 2);
  const int64_t chunk_floats = 3 * box_width * box_height;
  range_check(env, int64_t(out.ElementLength()) >= (first_slot + boxes) * chunk_floats, "out is too small for the boxes at firstSlot");
  for (int64_t i = 0; i < boxes; i++) {
    const int64_t x = origins[size_t(2 * i)], y = origins[size_t(2 * i + 1)];
    if (x < 0 || y < 0 || x + box_width > width || y + box_height > height)
      throw Napi::RangeError::New(env, "box " + std::to_string(i) + " lies outside the image");
  }

  Table table;
  for (int c = 0; c < 3; c++) {
    const double mean = mean_std[size_t(c)], stdev = mean_std[size_t(3 + c)];
    range_check(env, stdev != 0, "std must not be 0");
    for (int v = 0; v < 256; v++) table[c][v] = float((double(v) / 255 - mean) / stdev);
  }
  const uint8_t* data = image.Data();
  for (int64_t i = 0; i < boxes; i++) {
    const int64_t x = origins[size_t(2 * i)], y = origins[size_t(2 * i + 1)];
    float* dest = out.Data() + (first_slot + i) * chunk_floats;
    switch (channels) {
      case 1: extract_box<1>(data, width, x, y, box_width, box_height, table, dest); break;
      case 3: extract_box<3>(data, width, x, y, box_width, box_height, table, dest); break;
      default: extract_box<4>(data, width, x, y, box_width, box_height, table, dest); break;
    }
  }
  return env.Undefined();
}

}  // namespace

void register_chunk_extract(Napi::Env env, Napi::Object exports) {
  exports.Set("extractChunks", Napi::Function::New(env, ExtractChunks, "extractChunks"));
}

}  // namespace flower
