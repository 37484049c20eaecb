#pragma once

// The parallel loops of the kernels that run inside OpenCV's forward (the custom layers, the convolution),
// on as many threads as cv::setNumThreads allows.
//
// By default they run on aitw's loop pool (parallel.cpp): cv::getNumThreads() - 1 workers and the calling
// thread, each taking the chunks of its own contiguous share of the range first, then the others'; after a
// loop the workers spin for a while (the next layer's loop comes within microseconds), then sleep. OpenCV's
// TBB backend cost ~3-4 us more per loop back to back in a microbenchmark, and a forward runs ~115 loops
// (YOLO11n, bf16); its forward took 0.93-0.97x the time on the pool (Zen 5 VM, bench/RESULTS.md). One loop at
// a time: a loop that finds the pool busy with another thread's runs on its own thread; a loop inside a
// stripe runs where it is. With one thread (cv::setNumThreads(1)), and for every loop with
// AITW_PARALLEL=opencv, cv::parallel_for_ runs them on OpenCV's backend.
//
// ThreadSanitizer (preset tsan) cannot see the joins of OpenCV's loops: OpenCV inlines TBB's templates into
// its uninstrumented library, so the caller's writes before the loop and every stripe's writes before its
// return are invisible hand-offs (parallel.cpp is instrumented: TSan checks the pool's own hand-offs, but the
// stripes' bodies are the kernels, which are not). These files are
// compiled without TSan (kernel/CMakeLists.txt), yet their memcpy calls are intercepted: a stripe's memcpy
// on a TBB worker was reported racing with the next frame's cv::Mat::copyTo of the same blob on the
// pipeline's thread. With AITW_TSAN_ANNOTATE (set there for the TSan build) each loop tells TSan what the
// join guarantees: the caller releases before the loop and each stripe acquires it; each stripe releases at
// its end and the caller acquires after the loop. Two addresses, so that stripes are not ordered with each
// other: a race between stripes is still reported.

#include <opencv2/core.hpp>

#ifdef AITW_TSAN_ANNOTATE
#include <sanitizer/tsan_interface.h>
#endif

namespace aitw::kernel {

namespace detail {
// Runs fn(ctx, begin, end) over [range.start, range.end) in `stripes` stripes (<= 0: one per index) on the
// loop pool, the calling thread taking part; false, having run nothing, where the pool does not take it
// (parallel.hpp's header). Exceptions from fn reach the caller (the first one; the other stripes still run).
bool loop_pool_run(const cv::Range& range, double stripes, void (*fn)(void*, const cv::Range&), void* ctx);
}  // namespace detail

template <class Body>
void parallel_for(const cv::Range& range, Body&& body, double nstripes = -1.0) {
#ifdef AITW_TSAN_ANNOTATE
  char start = 0, done = 0;
  __tsan_release(&start);
  struct AcquireAtEnd {  // also when a stripe's exception leaves the loop
    char* p;
    ~AcquireAtEnd() { __tsan_acquire(p); }
  } acquire_done{&done};
  auto run = [&](const cv::Range& r) {
    __tsan_acquire(&start);
    body(r);
    __tsan_release(&done);
  };
#else
  auto& run = body;
#endif
  using Run = std::remove_reference_t<decltype(run)>;
  const auto call = [](void* ctx, const cv::Range& r) { (*static_cast<Run*>(ctx))(r); };
  if (!detail::loop_pool_run(range, nstripes, call, const_cast<void*>(static_cast<const void*>(&run))))
    cv::parallel_for_(range, run, nstripes);
}

}  // namespace aitw::kernel
