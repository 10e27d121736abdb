// How many threads the parallel kernels (top-k) use.
#pragma once

namespace flower {

// Hardware concurrency unless $FLOWER_NATIVE_THREADS (read once, capped at 256) or
// set_thread_count() says otherwise.
int thread_count();
void set_thread_count(int threads);

}  // namespace flower
