#include "bandwidth.h"

#include <chrono>
#include <cstring>
#include <memory>

#include "parallel.h"

namespace flower {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Bandwidth measure_bandwidth(int64_t bytes, int threads, int repeats) {
  const int64_t words = bytes / 8;
  std::unique_ptr<uint64_t[]> source(new uint64_t[size_t(words)]);
  std::unique_ptr<uint64_t[]> target(new uint64_t[size_t(words)]);
  auto range = [&](int part, int64_t& begin, int64_t& end) {
    begin = words * part / threads;
    end = words * (part + 1) / threads;
  };
  run_parallel(threads, [&](int part) {  // first touch, so pages exist before timing
    int64_t begin, end;
    range(part, begin, end);
    for (int64_t i = begin; i < end; i++) source[size_t(i)] = uint64_t(i);
    std::memset(target.get() + begin, 0, size_t(end - begin) * 8);
  });

  Bandwidth result;
  result.sum_gbs.reserve(size_t(repeats));
  result.copy_gbs.reserve(size_t(repeats));
  std::unique_ptr<uint64_t[]> checks(new uint64_t[size_t(threads)]);
  for (int rep = 0; rep < repeats; rep++) {
    auto start = std::chrono::steady_clock::now();
    run_parallel(threads, [&](int part) {
      int64_t begin, end;
      range(part, begin, end);
      uint64_t a = 0, b = 0, c = 0, d = 0;
      int64_t i = begin;
      for (; i + 4 <= end; i += 4) {
        a += source[size_t(i)];
        b += source[size_t(i + 1)];
        c += source[size_t(i + 2)];
        d += source[size_t(i + 3)];
      }
      for (; i < end; i++) a += source[size_t(i)];
      checks[size_t(part)] = a + b + c + d;  // keeps the loop from being optimized away
    });
    result.sum_gbs.push_back(double(words * 8) / seconds_since(start) / 1e9);

    start = std::chrono::steady_clock::now();
    run_parallel(threads, [&](int part) {
      int64_t begin, end;
      range(part, begin, end);
      std::memcpy(target.get() + begin, source.get() + begin, size_t(end - begin) * 8);
    });
    result.copy_gbs.push_back(double(words * 16) / seconds_since(start) / 1e9);
  }
  for (int t = 0; t < threads; t++) result.check += checks[size_t(t)];
  return result;
}

}  // namespace flower
