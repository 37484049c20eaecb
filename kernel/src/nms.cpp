#include "aitw/kernel/nms.hpp"

#include <algorithm>
#include <limits>

namespace aitw::kernel {

void nms(std::vector<Detection>& dets, const NmsParams& params, std::vector<int>& keep) {
  keep.clear();
  if (dets.empty() || params.max_det <= 0) return;
  std::stable_sort(dets.begin(), dets.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  thread_local std::vector<float> area;
  area.resize(dets.size());
  for (std::size_t i = 0; i < dets.size(); ++i)
    area[i] = std::max(0.f, dets[i].x2 - dets[i].x1) * std::max(0.f, dets[i].y2 - dets[i].y1);

  for (std::size_t i = 0; i < dets.size(); ++i) {
    const Detection& d = dets[i];
    bool suppressed = false;
    for (int k : keep) {
      const Detection& o = dets[k];
      if (!params.class_agnostic && o.class_id != d.class_id) continue;
      // cv::dnn::NMSBoxes (jaccardDistance) counts two empty boxes as identical; so do we, to keep the
      // same set.
      if (area[i] + area[k] <= std::numeric_limits<float>::epsilon()) {
        suppressed = true;
        break;
      }
      const float iw = std::min(d.x2, o.x2) - std::max(d.x1, o.x1);
      const float ih = std::min(d.y2, o.y2) - std::max(d.y1, o.y1);
      if (iw <= 0.f || ih <= 0.f) continue;
      const float inter = iw * ih;
      const float uni = area[i] + area[k] - inter;
      if (uni > 0.f && inter > params.iou_threshold * uni) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    keep.push_back(static_cast<int>(i));
    if (static_cast<int>(keep.size()) >= params.max_det) break;
  }
}

}  // namespace aitw::kernel
