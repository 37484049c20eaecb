#include "aitw/kernel/yolo_decode.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace aitw::kernel {
namespace {

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// The threshold in logit space: sigmoid(x) > conf  <=>  x > log(conf / (1 - conf)).
float logit(float conf) {
  if (conf <= 0.f) return -std::numeric_limits<float>::infinity();
  if (conf >= 1.f) return std::numeric_limits<float>::infinity();
  return std::log(conf / (1.f - conf));
}

// Expected bin index under the softmax of reg_max logits spaced `step` floats apart.
float dfl_side(const float* bins, std::ptrdiff_t step, int reg_max) {
  float m = bins[0];
  for (int b = 1; b < reg_max; ++b) m = std::max(m, bins[b * step]);
  float sum = 0.f, weighted = 0.f;
  for (int b = 0; b < reg_max; ++b) {
    const float e = std::exp(bins[b * step] - m);
    sum += e;
    weighted += e * static_cast<float>(b);
  }
  return weighted / sum;
}

void validate(const HeadLevelView& level, const HeadLayout& layout) {
  if (!level.data || level.height <= 0 || level.width <= 0 || level.stride <= 0 || layout.reg_max <= 0 ||
      layout.num_classes <= 0)
    throw std::invalid_argument("decode_yolo_level: empty level or layout");
}

void emit(const HeadLevelView& level, const HeadLayout& layout, const LetterboxParams& lb, int cell, float score,
          int class_id, std::vector<Detection>& out) {
  const std::ptrdiff_t hw = static_cast<std::ptrdiff_t>(level.height) * level.width;
  const float* p = level.data + cell;
  const float l = dfl_side(p, hw, layout.reg_max);
  const float t = dfl_side(p + layout.reg_max * hw, hw, layout.reg_max);
  const float r = dfl_side(p + 2 * layout.reg_max * hw, hw, layout.reg_max);
  const float b = dfl_side(p + 3 * layout.reg_max * hw, hw, layout.reg_max);
  const float s = static_cast<float>(level.stride);
  const float cx = (static_cast<float>(cell % level.width) + 0.5f) * s;
  const float cy = (static_cast<float>(cell / level.width) + 0.5f) * s;
  Detection d{cx - l * s, cy - t * s, cx + r * s, cy + b * s, score, class_id};
  unletterbox_box(lb, d.x1, d.y1, d.x2, d.y2);
  out.push_back(d);
}

}  // namespace

std::size_t decode_yolo_level_reference(const HeadLevelView& level, const HeadLayout& layout,
                                        const DecodeParams& params, const LetterboxParams& lb,
                                        std::vector<Detection>& out) {
  validate(level, layout);
  const std::size_t before = out.size();
  const int hw = level.height * level.width;
  const float* cls = level.data + static_cast<std::ptrdiff_t>(4 * layout.reg_max) * hw;
  for (int cell = 0; cell < hw; ++cell) {
    int best = -1;
    float best_score = -1.f;
    for (int c = 0; c < layout.num_classes; ++c) {
      if (params.class_mask && !params.class_mask[c]) continue;
      const float score = sigmoid(cls[static_cast<std::ptrdiff_t>(c) * hw + cell]);
      if (params.multi_label) {
        if (score > params.conf_threshold) emit(level, layout, lb, cell, score, c, out);
      } else if (score > best_score) {
        best_score = score;
        best = c;
      }
    }
    if (!params.multi_label && best >= 0 && best_score > params.conf_threshold)
      emit(level, layout, lb, cell, best_score, best, out);
  }
  return out.size() - before;
}

std::size_t decode_yolo_level(const HeadLevelView& level, const HeadLayout& layout, const DecodeParams& params,
                              const LetterboxParams& lb, std::vector<Detection>& out) {
  validate(level, layout);
  const std::size_t before = out.size();
  const int hw = level.height * level.width;
  const float thr = logit(params.conf_threshold);
  const float* cls = level.data + static_cast<std::ptrdiff_t>(4 * layout.reg_max) * hw;

  // Channel-major max over classes: each pass reads one contiguous plane, so the loop vectorises and
  // streams memory, instead of striding by H*W per class for every cell.
  thread_local std::vector<float> best_logit;
  thread_local std::vector<int> best_class;
  best_logit.assign(hw, -std::numeric_limits<float>::infinity());
  best_class.assign(hw, -1);
  for (int c = 0; c < layout.num_classes; ++c) {
    if (params.class_mask && !params.class_mask[c]) continue;
    const float* plane = cls + static_cast<std::ptrdiff_t>(c) * hw;
    float* bl = best_logit.data();
    int* bc = best_class.data();
    for (int i = 0; i < hw; ++i) {
      const bool better = plane[i] > bl[i];
      bl[i] = better ? plane[i] : bl[i];
      bc[i] = better ? c : bc[i];
    }
  }
  for (int cell = 0; cell < hw; ++cell) {
    if (!(best_logit[cell] > thr)) continue;
    if (!params.multi_label) {
      emit(level, layout, lb, cell, sigmoid(best_logit[cell]), best_class[cell], out);
      continue;
    }
    for (int c = 0; c < layout.num_classes; ++c) {
      if (params.class_mask && !params.class_mask[c]) continue;
      const float x = cls[static_cast<std::ptrdiff_t>(c) * hw + cell];
      if (x > thr) emit(level, layout, lb, cell, sigmoid(x), c, out);
    }
  }
  return out.size() - before;
}

}  // namespace aitw::kernel
