#pragma once
// A detection candidate in frame pixels, as decode produces and NMS consumes.

namespace aitw::kernel {

struct Detection {
  float x1, y1, x2, y2;  // frame pixels, x2/y2 exclusive edges (Ultralytics xyxy)
  float score;
  int class_id;
};

}  // namespace aitw::kernel
