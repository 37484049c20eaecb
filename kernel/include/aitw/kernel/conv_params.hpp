#pragma once
// The LayerParams of one convolution as OpenCV's Caffe-style keys spell them: what the tests
// (kernel/test/conv_test.cpp) and the per-layer benchmark (bench/conv_bench.cpp) build their one-layer nets
// from, so that both hand OpenCV's and aitw's layer the same description.
#include <opencv2/dnn.hpp>

#include "aitw/kernel/conv.hpp"

namespace aitw::kernel {

// Name "conv", type "Convolution", kernel/stride/pad/group/num_output from `s`; blobs: copies of `weights`
// ([out][in / groups][kh][kw]) and of `bias` unless it is empty. `aitw`: marked for aitw's layer
// (kConvolutionMark), else OpenCV's own.
cv::dnn::LayerParams convolution_layer_params(const ConvShape& s, const cv::Mat& weights, const cv::Mat& bias,
                                              bool aitw);

}  // namespace aitw::kernel
