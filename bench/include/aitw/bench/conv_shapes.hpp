#pragma once
// The convolution layers of a model as aitw runs it: the adapted graph (cut head, re-targeted input) read
// into an OpenCV net, and each Convolution layer's parameters, weights and input size taken from the net.
// Computed at run time rather than tabled, so that the table follows the model and the input size.
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "aitw/kernel/conv.hpp"

namespace aitw::bench {

struct ConvLayerCase {
  std::string name;  // the layer (the Conv node's output tensor)
  kernel::ConvShape shape;
  int h = 0, w = 0;          // input size
  cv::Mat weights;           // [out][in / groups][kh][kw], CV_32F
  cv::Mat bias;              // out_channels values, or empty
  bool silu = false;         // a SiLU follows (every convolution but the head's last ones)
  double flops() const;      // 2 * multiply-adds
  std::string kind() const;  // "1x1", "3x3s1", "3x3s2", "dw3x3s1", ...
};

// `model`: a path or a name in the model search dirs; throws std::runtime_error.
std::vector<ConvLayerCase> extract_conv_layers(const std::string& model, int height, int width);

}  // namespace aitw::bench
