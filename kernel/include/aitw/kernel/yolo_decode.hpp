#pragma once
// Decode of the raw YOLOv8/YOLO11 Detect-head outputs that the model adapter cuts the graph at.
//
// Export recipe this depends on: Ultralytics `yolo export model=yolo11n.pt format=onnx opset=12`
// (or yolov8n.pt). The adapter cuts the graph before the in-graph DFL, so each level is the raw
// Concat(box_branch, class_branch) tensor [1, 4*reg_max + nc, H/stride, W/stride]: 4*reg_max DFL bin
// logits (sides l, t, r, b, reg_max bins each) then nc class logits (no objectness).
#include <cstdint>
#include <vector>

#include "aitw/kernel/detection.hpp"
#include "aitw/kernel/letterbox.hpp"

namespace aitw::kernel {

struct HeadLevelView {
  const float* data = nullptr;  // [channels, height, width], contiguous
  int height = 0, width = 0;
  int stride = 0;  // input pixels per cell
};

struct HeadLayout {
  int reg_max = 16;
  int num_classes = 80;
  int channels() const { return 4 * reg_max + num_classes; }
};

struct DecodeParams {
  float conf_threshold = 0.25f;
  // One candidate per (anchor, class) above threshold, as Ultralytics' validator does; otherwise only
  // the best class per anchor (what predict does).
  bool multi_label = false;
  // Optional per-class filter of num_classes bytes (non-zero = keep); nullptr keeps every class.
  const std::uint8_t* class_mask = nullptr;
};

// Appends the candidates of one level to `out`, boxes mapped to frame pixels through `lb` (not clipped).
// The class test compares logits with logit(conf) so that sigmoid and the DFL softmax run only for
// anchors that survive. Candidates come in cell order (row-major), then class order. Returns the number
// of candidates appended.
std::size_t decode_yolo_level(const HeadLevelView& level, const HeadLayout& layout,
                              const DecodeParams& params, const LetterboxParams& lb,
                              std::vector<Detection>& out);

// Numerically plain version kept as the reference the fast path is tested against.
std::size_t decode_yolo_level_reference(const HeadLevelView& level, const HeadLayout& layout,
                                        const DecodeParams& params, const LetterboxParams& lb,
                                        std::vector<Detection>& out);

}  // namespace aitw::kernel
