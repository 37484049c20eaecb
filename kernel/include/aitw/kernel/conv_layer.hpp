#pragma once
// aitw's convolution as an OpenCV DNN layer (kernel/conv.hpp does the arithmetic). register_dnn_layers()
// registers create_convolution_layer under "Convolution", the type OpenCV's ONNX importer gives every Conv
// node; it returns aitw's layer only for nodes that the model adapter marked with the attribute
// kConvolutionMark (AdaptOptions::custom_layers) and that aitw's kernels run, and OpenCV's own
// ConvolutionLayer for everything else (unmarked graphs such as the --opencv-layers baseline, dilation,
// grouped convolutions other than depthwise, "SAME" auto-padding, weights that are not constants).
#include <opencv2/dnn.hpp>

namespace aitw::kernel {

inline constexpr const char* kConvolutionMark = "aitw_conv";

cv::Ptr<cv::dnn::Layer> create_convolution_layer(cv::dnn::LayerParams& params);

// True when `layer` is aitw's convolution (tests check that a loaded net uses it).
bool is_aitw_convolution(const cv::Ptr<cv::dnn::Layer>& layer);

}  // namespace aitw::kernel
