// Memory-bandwidth probe for the benchmark: streaming sum and copy over buffers far larger than
// the caches, on the same threads top-k uses, so top-k can be compared with what memory delivers.
// No N-API here: bandwidth_binding.cc wraps it.
#pragma once
#include <cstdint>
#include <vector>

namespace flower {

struct Bandwidth {
  std::vector<double> sum_gbs;   // GB/s of the streaming sum, one entry per repeat
  std::vector<double> copy_gbs;  // GB/s of the copy (bytes read plus bytes written), per repeat
  uint64_t check = 0;            // depends on the sums, so they cannot be optimized away
};

Bandwidth measure_bandwidth(int64_t bytes, int threads, int repeats);

}  // namespace flower
