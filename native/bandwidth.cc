// Memory-bandwidth probe for the benchmark: streaming sum and copy over buffers far larger than
// the caches, on the same threads top-k uses, so top-k can be compared with what memory delivers.
#include <chrono>
#include <cstring>
#include <memory>

#include "args.h"
#include "kernels.h"
#include "parallel.h"

namespace flower {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// memoryBandwidth(bytes, threads, repeats) -> { sumGBs: number[], copyGBs: number[] }, one entry
// per repeat. Copy counts bytes read plus bytes written.
Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int64_t bytes = int_arg(info, 0, "bytes", 1 << 20, int64_t(1) << 36);
  const int threads = int(int_arg(info, 1, "threads", 1, 256));
  const int repeats = int(int_arg(info, 2, "repeats", 1, 1000));
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

  auto sums = Napi::Array::New(env), copies = Napi::Array::New(env);
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
    sums.Set(uint32_t(rep), Napi::Number::New(env, double(words * 8) / seconds_since(start) / 1e9));

    start = std::chrono::steady_clock::now();
    run_parallel(threads, [&](int part) {
      int64_t begin, end;
      range(part, begin, end);
      std::memcpy(target.get() + begin, source.get() + begin, size_t(end - begin) * 8);
    });
    copies.Set(uint32_t(rep), Napi::Number::New(env, double(words * 16) / seconds_since(start) / 1e9));
  }
  uint64_t check = 0;
  for (int t = 0; t < threads; t++) check += checks[size_t(t)];
  auto result = Napi::Object::New(env);
  result.Set("sumGBs", sums);
  result.Set("copyGBs", copies);
  result.Set("check", Napi::Number::New(env, double(check % 1024)));
  return result;
}

}  // namespace

void register_bandwidth(Napi::Env env, Napi::Object exports) {
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth, "memoryBandwidth"));
}

}  // namespace flower
