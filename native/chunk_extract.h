// Chunk extraction: crop + HWC->CHW + normalize, one pass per box. No N-API here:
// chunk_extract_binding.cc wraps it.
#pragma once
#include <cstdint>

namespace flower {

// Cuts `boxes` boxes of box_width x box_height (top-left corner i at origins[2i], origins[2i + 1])
// out of an image `width` pixels wide with `channels` (1, 3 or 4) interleaved uint8 channels, and
// writes box i as planar RGB, (x / 255 - mean_std[c]) / mean_std[3 + c], at
// out + i * 3 * box_width * box_height. Every box must lie inside the image and no std may be 0.
void extract_chunks(const uint8_t* image, int64_t width, int64_t channels, const int32_t* origins, int64_t boxes,
                    int64_t box_width, int64_t box_height, const double* mean_std, float* out);

}  // namespace flower
