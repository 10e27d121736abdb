#include "threads.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace flower {
namespace {

int default_threads() {
  if (const char* env = std::getenv("FLOWER_NATIVE_THREADS")) {
    const int threads = std::atoi(env);
    if (threads >= 1) return std::min(threads, 256);
  }
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

int& configured_threads() {
  static int threads = default_threads();
  return threads;
}

}  // namespace

int thread_count() { return configured_threads(); }
void set_thread_count(int threads) { configured_threads() = threads; }

}  // namespace flower
