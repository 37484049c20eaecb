#pragma once
// Comparing the float tensors that tests compute (header-only: the suites link OpenCV themselves).

#include <limits>

#include <opencv2/core.hpp>

namespace aitw::testing {

// max |a - b| over two continuous float Mats of as many elements (any shapes), or +infinity when either holds
// a NaN or an infinity. cv::norm(a, b, NORM_INF) skips NaN: an output full of NaN, or with NaN where the
// reference is finite, would compare as equal to it.
inline double max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  CV_Assert(a.type() == CV_32F && b.type() == CV_32F && a.isContinuous() && b.isContinuous() &&
            a.total() == b.total());
  const cv::Mat fa(1, static_cast<int>(a.total()), CV_32F, const_cast<uchar*>(a.data));
  const cv::Mat fb(1, static_cast<int>(b.total()), CV_32F, const_cast<uchar*>(b.data));
  if (!cv::checkRange(fa) || !cv::checkRange(fb)) return std::numeric_limits<double>::infinity();
  return cv::norm(fa, fb, cv::NORM_INF);
}

}  // namespace aitw::testing
