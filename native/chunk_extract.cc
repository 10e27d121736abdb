// Crop + HWC->CHW + normalize in one pass per box. Normalization goes through a 256-entry table
// per channel computed exactly as the TS reference does ((x / 255 - mean) / std in double, then
// float), so native and TS batches are bit-identical; per pixel it is then three loads and stores.
#include "chunk_extract.h"

#include <cstddef>

namespace flower {
namespace {

using Table = float[3][256];

template <int Channels>
void extract_box(const uint8_t* image, int64_t width, int64_t x0, int64_t y0, int64_t box_width, int64_t box_height,
                 const Table& table, float* out) {
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

}  // namespace

void extract_chunks(const uint8_t* image, int64_t width, int64_t channels, const int32_t* origins, int64_t boxes,
                    int64_t box_width, int64_t box_height, const double* mean_std, float* out) {
  const int64_t chunk_floats = 3 * box_width * box_height;
  Table table;
  for (int c = 0; c < 3; c++) {
    const double mean = mean_std[size_t(c)], stdev = mean_std[size_t(3 + c)];
    for (int v = 0; v < 256; v++) table[c][v] = float((double(v) / 255 - mean) / stdev);
  }
  for (int64_t i = 0; i < boxes; i++) {
    const int64_t x = origins[size_t(2 * i)], y = origins[size_t(2 * i + 1)];
    float* dest = out + i * chunk_floats;
    switch (channels) {
      case 1: extract_box<1>(image, width, x, y, box_width, box_height, table, dest); break;
      case 3: extract_box<3>(image, width, x, y, box_width, box_height, table, dest); break;
      default: extract_box<4>(image, width, x, y, box_width, box_height, table, dest); break;
    }
  }
}

}  // namespace flower
