#include "aitw/bench/conv_shapes.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include "aitw/model/lookup.hpp"
#include "aitw/model/onnx_model.hpp"

namespace aitw::bench {

double ConvLayerCase::flops() const {
  return 2.0 * shape.out_channels * shape.out_h(h) * shape.out_w(w) * (shape.in_channels / shape.groups) *
         shape.kernel_h * shape.kernel_w;
}

std::string ConvLayerCase::kind() const {
  // snprintf: GCC 12 reports a false -Wrestrict on short string concatenations (PR 105329).
  char k[48];
  const bool strided = shape.kernel_h > 1 || shape.stride_h > 1;
  std::snprintf(k, sizeof k, "%s%dx%d%s%.0d", shape.depthwise() ? "dw" : "", shape.kernel_h, shape.kernel_w,
                strided ? "s" : "", strided ? shape.stride_h : 0);
  return k;
}

std::vector<ConvLayerCase> extract_conv_layers(const std::string& model_spec, int height, int width) {
  const auto model = model::OnnxModel::load(model::resolve_model_path(model_spec));
  model::AdaptOptions opt;
  opt.custom_layers = false;  // OpenCV's own layers: the parameters as OpenCV parsed them
  const auto graph = model.adapt({height, width}, opt);
  cv::dnn::Net net = model::load_net(graph, model.label());
  const cv::dnn::MatShape input{1, 3, height, width};
  std::vector<ConvLayerCase> cases;
  for (const auto& name : net.getLayerNames()) {
    const int id = net.getLayerId(name);
    const auto layer = net.getLayer(id);
    if (layer->type != "Convolution") continue;
    const auto conv = layer.dynamicCast<cv::dnn::BaseConvolutionLayer>();
    if (conv.empty() || layer->blobs.empty()) throw std::runtime_error("conv layer without weights: " + name);
    std::vector<cv::dnn::MatShape> in_shapes, out_shapes;
    net.getLayerShapes(input, id, in_shapes, out_shapes);
    ConvLayerCase c;
    c.name = name;
    c.weights = layer->blobs[0].clone();
    if (layer->blobs.size() > 1) c.bias = layer->blobs[1].clone();
    c.h = in_shapes[0][2];
    c.w = in_shapes[0][3];
    auto& s = c.shape;
    s.in_channels = in_shapes[0][1];
    s.out_channels = c.weights.size[0];
    s.groups = s.in_channels / c.weights.size[1];
    s.kernel_h = static_cast<int>(conv->kernel_size[0]);
    s.kernel_w = static_cast<int>(conv->kernel_size[1]);
    s.stride_h = static_cast<int>(conv->strides[0]);
    s.stride_w = static_cast<int>(conv->strides[1]);
    s.pad_top = static_cast<int>(conv->pads_begin[0]);
    s.pad_left = static_cast<int>(conv->pads_begin[1]);
    s.pad_bottom = static_cast<int>(conv->pads_end[0]);
    s.pad_right = static_cast<int>(conv->pads_end[1]);
    c.silu =
        std::find(graph.output_names.begin(), graph.output_names.end(), name) == graph.output_names.end();
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace aitw::bench
