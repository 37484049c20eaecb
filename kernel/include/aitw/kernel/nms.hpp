#pragma once
// Class-aware greedy non-maximum suppression.
#include <cstddef>
#include <vector>

#include "aitw/kernel/detection.hpp"

namespace aitw::kernel {

struct NmsParams {
  float iou_threshold = 0.45f;  // a box is suppressed when IoU with a kept box of its class is > this
  int max_det = 300;            // stop once this many are kept
  bool class_agnostic = false;
};

// Keeps the highest-scoring boxes of `dets` (sorted in place by descending score, stable) and writes the
// indices of the kept ones, in descending score order, to `keep`. IoU uses continuous areas (w*h); two
// empty boxes count as identical, as in cv::dnn::NMSBoxes.
void nms(std::vector<Detection>& dets, const NmsParams& params, std::vector<int>& keep);

}  // namespace aitw::kernel
