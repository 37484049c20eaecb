#include "aitw/kernel/nms.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

namespace aitw::kernel {
namespace {

// Kept boxes of one class, structure-of-arrays so that the IoU test against all of them vectorises.
struct KeptBoxes {
  std::vector<float> x1, y1, x2, y2, area;
  void clear() {
    x1.clear();
    y1.clear();
    x2.clear();
    y2.clear();
    area.clear();
  }
  void add(const Detection& d, float a) {
    x1.push_back(d.x1);
    y1.push_back(d.y1);
    x2.push_back(d.x2);
    y2.push_back(d.y2);
    area.push_back(a);
  }
  // True when `d` overlaps a kept box by more than `thr` (branch-free over the whole list).
  bool suppresses(const Detection& d, float a, float thr) const {
    const std::size_t n = x1.size();
    int hit = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const float iw = std::max(0.f, std::min(d.x2, x2[k]) - std::max(d.x1, x1[k]));
      const float ih = std::max(0.f, std::min(d.y2, y2[k]) - std::max(d.y1, y1[k]));
      const float inter = iw * ih;
      const float sum = a + area[k];
      // cv::dnn::NMSBoxes (jaccardDistance) counts two empty boxes as identical; so do we, to keep the
      // same set.
      hit |= (inter > thr * (sum - inter)) | (sum <= std::numeric_limits<float>::epsilon());
    }
    return hit != 0;
  }
};

}  // namespace

void nms(std::vector<Detection>& dets, const NmsParams& params, std::vector<int>& keep) {
  keep.clear();
  if (dets.empty() || params.max_det <= 0) return;
  std::stable_sort(dets.begin(), dets.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  // Class-aware NMS only ever compares boxes of one class: keep one bucket per class.
  thread_local std::vector<KeptBoxes> buckets;
  int max_class = 0;
  if (!params.class_agnostic)
    for (const auto& d : dets) max_class = std::max(max_class, d.class_id);
  if (buckets.size() < static_cast<std::size_t>(max_class) + 1) buckets.resize(max_class + 1);
  for (int c = 0; c <= max_class; ++c) buckets[c].clear();

  for (std::size_t i = 0; i < dets.size(); ++i) {
    const Detection& d = dets[i];
    KeptBoxes& kept = buckets[params.class_agnostic ? 0 : std::max(0, d.class_id)];
    const float a = std::max(0.f, d.x2 - d.x1) * std::max(0.f, d.y2 - d.y1);
    if (kept.suppresses(d, a, params.iou_threshold)) continue;
    kept.add(d, a);
    keep.push_back(static_cast<int>(i));
    if (static_cast<int>(keep.size()) >= params.max_det) break;
  }
}

}  // namespace aitw::kernel
