// Runs fn(part) for part in [0, parts) on parts threads (the caller's thread takes part 0) and
// rethrows the first exception any of them threw, once all have finished.
#pragma once
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace flower {

template <typename Fn>
void run_parallel(int parts, Fn&& fn) {
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto guarded = [&](int part) {
    try {
      fn(part);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(parts > 1 ? parts - 1 : 0);
  for (int part = 1; part < parts; part++) {
    try {
      threads.emplace_back(guarded, part);
    } catch (...) {
      guarded(part);  // no thread to be had: run that part here
    }
  }
  guarded(0);
  for (auto& thread : threads) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace flower
