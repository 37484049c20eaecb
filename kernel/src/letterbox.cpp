#include "aitw/kernel/letterbox.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace aitw::kernel {

LetterboxParams letterbox_params(int src_width, int src_height, int dst_width, int dst_height) {
  if (src_width <= 0 || src_height <= 0 || dst_width <= 0 || dst_height <= 0)
    throw std::invalid_argument("letterbox: sizes must be positive (frame " + std::to_string(src_width) +
                                "x" + std::to_string(src_height) + ", input " + std::to_string(dst_width) +
                                "x" + std::to_string(dst_height) + ")");
  LetterboxParams p;
  p.src_width = src_width;
  p.src_height = src_height;
  p.dst_width = dst_width;
  p.dst_height = dst_height;
  p.scale = std::min(static_cast<float>(dst_height) / static_cast<float>(src_height),
                     static_cast<float>(dst_width) / static_cast<float>(src_width));
  p.resized_width = std::clamp(static_cast<int>(std::lround(src_width * p.scale)), 1, dst_width);
  p.resized_height = std::clamp(static_cast<int>(std::lround(src_height * p.scale)), 1, dst_height);
  // Ultralytics splits odd padding with round(d/2 ∓ 0.1): the extra pixel goes to bottom/right.
  const double dw = (dst_width - p.resized_width) / 2.0;
  const double dh = (dst_height - p.resized_height) / 2.0;
  p.pad_left = static_cast<int>(std::lround(dw - 0.1));
  p.pad_top = static_cast<int>(std::lround(dh - 0.1));
  return p;
}

InputSize auto_input_size(int src_width, int src_height, int long_side, int stride) {
  if (src_width <= 0 || src_height <= 0 || long_side <= 0 || stride <= 0)
    throw std::invalid_argument("auto_input_size: sizes must be positive");
  const float r = std::min(static_cast<float>(long_side) / static_cast<float>(src_height),
                           static_cast<float>(long_side) / static_cast<float>(src_width));
  const int w = std::max(1, static_cast<int>(std::lround(src_width * r)));
  const int h = std::max(1, static_cast<int>(std::lround(src_height * r)));
  auto round_up = [stride](int v) { return (v + stride - 1) / stride * stride; };
  return {round_up(h), round_up(w)};
}

}  // namespace aitw::kernel
