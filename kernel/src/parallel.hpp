#pragma once

// cv::parallel_for_ for the kernels that run inside OpenCV's forward (the custom layers, the convolution), on
// the TBB arena that cv::setNumThreads sizes.
//
// ThreadSanitizer (preset tsan) cannot see that loop's joins: OpenCV inlines TBB's templates into its
// uninstrumented library, so the caller's writes before the loop and every stripe's writes before its return
// are invisible hand-offs. These files are compiled without TSan (kernel/CMakeLists.txt), yet their memcpy
// calls are intercepted: a stripe's memcpy on a TBB worker was reported racing with the next frame's
// cv::Mat::copyTo of the same blob on the pipeline's thread. With AITW_TSAN_ANNOTATE (set there for the TSan
// build) each loop tells TSan what the join guarantees: the caller releases before the loop and each stripe
// acquires it; each stripe releases at its end and the caller acquires after the loop. Two addresses, so
// that stripes are not ordered with each other: a race between stripes is still reported.

#include <opencv2/core.hpp>

#ifdef AITW_TSAN_ANNOTATE
#include <sanitizer/tsan_interface.h>
#endif

namespace aitw::kernel {

template <class Body>
void parallel_for(const cv::Range& range, Body&& body, double nstripes = -1.0) {
#ifdef AITW_TSAN_ANNOTATE
  char start = 0, done = 0;
  __tsan_release(&start);
  cv::parallel_for_(
      range,
      [&](const cv::Range& r) {
        __tsan_acquire(&start);
        body(r);
        __tsan_release(&done);
      },
      nstripes);
  __tsan_acquire(&done);
#else
  cv::parallel_for_(range, body, nstripes);
#endif
}

}  // namespace aitw::kernel
