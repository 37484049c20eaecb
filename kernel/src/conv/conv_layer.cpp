#include "aitw/kernel/conv_layer.hpp"

#include <cstdlib>
#include <memory>
#include <string>

#include <opencv2/dnn/all_layers.hpp>
#include <opencv2/dnn/shape_utils.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_params.hpp"
#include "aitw/kernel/dnn_layers.hpp"

namespace aitw::kernel {
namespace {

using cv::dnn::MatShape;

class AitwConvolutionLayer : public cv::dnn::ConvolutionLayer {
 public:
  // `parsed`: OpenCV's own layer built from the same params, whose parsing of kernel, strides and pads
  // (ONNX attributes and the legacy Caffe keys) this layer reuses.
  AitwConvolutionLayer(const cv::dnn::LayerParams& params, const cv::dnn::BaseConvolutionLayer& parsed,
                       const ConvShape& shape)
      : shape_(shape),
        residual_(params.get<int>(kConvResidualMark, 0) != 0),
        fixed_activation_(params.get<std::string>(kConvActivationAttr, "") == "silu" ? ConvActivation::SiLU
                                                                                     : ConvActivation::None) {
    setParamsFrom(params);
    kernel_size = parsed.kernel_size;
    strides = parsed.strides;
    dilations = parsed.dilations;
    pads_begin = parsed.pads_begin;
    pads_end = parsed.pads_end;
    adjust_pads = parsed.adjust_pads;
    padMode = parsed.padMode;
    numOutput = parsed.numOutput;
    reset_weights();
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    CV_Assert(inputs.size() == (residual_ ? 2u : 1u) && inputs[0].size() == 4 &&
              inputs[0][1] == shape_.in_channels && shape_.out_h(inputs[0][2]) > 0 &&
              shape_.out_w(inputs[0][3]) > 0);
    outputs.assign(1, MatShape{inputs[0][0], shape_.out_channels, shape_.out_h(inputs[0][2]),
                               shape_.out_w(inputs[0][3])});
    // The fused Add takes no broadcast: the skip tensor is the output's shape (a bottleneck's).
    if (residual_ && inputs[1] != outputs[0])
      CV_Error(cv::Error::StsBadSize, "convolution '" + name + "': residual input " +
                                          cv::dnn::toString(inputs[1]) + " is not the output's shape " +
                                          cv::dnn::toString(outputs[0]));
    return false;
  }

  // OpenCV calls finalize on every (re)allocation of the net, before it offers BatchNorm/Scale (tryFuse)
  // and activations (setActivation) again: start over from the layer's own weights each time.
  void finalize(cv::InputArrayOfArrays, cv::OutputArrayOfArrays) override { reset_weights(); }

  bool tryFuse(cv::Ptr<cv::dnn::Layer>& top) override {
    // With a residual the output is act(conv) + skip: a scale after it is not a scale of the weights.
    if (residual_ || activation_ != ConvActivation::None || top.empty()) return false;
    cv::Mat scale, shift;
    top->getScaleShift(scale, shift);
    if (scale.empty() && shift.empty()) return false;
    const int co = shape_.out_channels;
    const auto n_ok = [co](const cv::Mat& m) {
      return m.empty() || m.total() == 1 || static_cast<int>(m.total()) == co;
    };
    if (!n_ok(scale) || !n_ok(shift) || (!scale.empty() && scale.type() != CV_32F) ||
        (!shift.empty() && shift.type() != CV_32F))
      return false;
    const std::size_t per_out = weights_.size() / co;
    for (int o = 0; o < co; ++o) {
      const float s = scale.empty() ? 1.f : scale.ptr<float>()[scale.total() == 1 ? 0 : o];
      const float b = shift.empty() ? 0.f : shift.ptr<float>()[shift.total() == 1 ? 0 : o];
      for (std::size_t i = 0; i < per_out; ++i) weights_[o * per_out + i] *= s;
      bias_[o] = bias_[o] * s + b;
    }
    pack();
    return true;
  }

  // SiLU (aitw's layer or OpenCV's Swish) and plain ReLU run in the kernels' epilogue; anything else is
  // refused, so that OpenCV runs it as its own layer.
  bool setActivation(const cv::Ptr<cv::dnn::ActivationLayer>& layer) override {
    if (layer.empty()) {
      activation_ = fixed_activation_;
      return true;
    }
    // With a residual the activation (the adapter's, before the Add) is fixed; one after the Add cannot run
    // in the epilogue.
    if (residual_) return false;
    if (layer->type == kSiLUOpType || !layer.dynamicCast<cv::dnn::SwishLayer>().empty()) {
      activation_ = ConvActivation::SiLU;
      return true;
    }
    const auto relu = layer.dynamicCast<cv::dnn::ReLULayer>();
    if (!relu.empty() && relu->negativeSlope == 0.f) {
      activation_ = ConvActivation::ReLU;
      return true;
    }
    return false;
  }

  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays) override {
    std::vector<cv::Mat> in, out;
    inputs_arr.getMatVector(in);
    outputs_arr.getMatVector(out);
    const cv::Mat& x = in[0];
    cv::Mat& y = out[0];
    CV_Assert(x.dims == 4 && x.type() == CV_32F && y.type() == CV_32F && x.step[1] * x.size[1] == x.step[0] &&
              y.step[1] * y.size[1] <= y.step[0]);
    const float* skip = nullptr;
    std::ptrdiff_t skip_stride = 0;
    if (residual_) {
      const cv::Mat& r = in[1];
      CV_Assert(in.size() == 2 && r.type() == CV_32F && r.dims == 4 && r.step[1] * r.size[1] <= r.step[0] &&
                r.step[2] == r.size[3] * sizeof(float) && r.step[1] == r.size[2] * r.step[2]);
      skip = r.ptr<float>();
      skip_stride = static_cast<std::ptrdiff_t>(r.step[0] / sizeof(float));
    }
    // Within an image both are contiguous; images may be apart (an output slice of a fused Concat).
    const int h = x.size[2], w = x.size[3];
    workspace_.resize(packed_->workspace_floats(h, w));
    packed_->forward(x.ptr<float>(), x.size[0], h, w, static_cast<std::ptrdiff_t>(x.step[0] / sizeof(float)),
                     y.ptr<float>(), static_cast<std::ptrdiff_t>(y.step[0] / sizeof(float)), activation_,
                     workspace_.data(), workspace_.size(), skip, skip_stride);
  }

  int64 getFLOPS(const std::vector<MatShape>& inputs, const std::vector<MatShape>& outputs) const override {
    const int64 taps = static_cast<int64>(shape_.kernel_h) * shape_.kernel_w;
    return 2 * cv::dnn::total(outputs[0]) * taps * (inputs[0][1] / shape_.groups);
  }

 private:
  void reset_weights() {
    activation_ = fixed_activation_;
    const cv::Mat& wm = blobs[0];
    weights_.assign(wm.ptr<float>(), wm.ptr<float>() + wm.total());
    bias_.assign(shape_.out_channels, 0.f);
    if (blobs.size() > 1 && blobs[1].total() == static_cast<std::size_t>(shape_.out_channels))
      bias_.assign(blobs[1].ptr<float>(), blobs[1].ptr<float>() + shape_.out_channels);
    pack();
  }
  void pack() { packed_ = std::make_unique<PackedConv>(shape_, weights_.data(), bias_.data()); }

  ConvShape shape_;
  bool residual_;                      // a second input added after the activation (adapter's fused Add)
  ConvActivation fixed_activation_;    // the activation the adapter folded in with the Add
  std::vector<float> weights_, bias_;  // after folded BatchNorm / Scale
  std::unique_ptr<PackedConv> packed_;
  ConvActivation activation_ = ConvActivation::None;
  std::vector<float> workspace_;  // reused across frames; a net's forwards never overlap
};

}  // namespace

cv::Ptr<cv::dnn::Layer> create_convolution_layer(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::BaseConvolutionLayer> opencv = cv::dnn::ConvolutionLayer::create(params);
  if (!params.has(kConvolutionMark) || params.blobs.empty()) return opencv;
  const bool residual = params.get<int>(kConvResidualMark, 0) != 0;
  // The adapter fuses Adds only into convolutions aitw runs (convolution_fusion_enabled, supported shapes):
  // OpenCV's layer would read the skip tensor as weights.
  const auto fallback = [&](const char* why) -> cv::Ptr<cv::dnn::Layer> {
    if (residual)
      CV_Error(
          cv::Error::StsNotImplemented,
          "convolution '" + params.name + "' has a fused residual Add that only aitw's layer runs: " + why);
    return opencv;
  };
  if (!aitw_convolution_active()) return fallback("aitw's convolution is off");
  const cv::Mat& w = params.blobs[0];
  if (w.dims != 4 || w.type() != CV_32F || !w.isContinuous() || opencv->kernel_size.size() != 2 ||
      !opencv->padMode.empty() || opencv->dilations.size() != 2 || opencv->dilations[0] != 1 ||
      opencv->dilations[1] != 1 || opencv->pads_begin.size() != 2 || opencv->pads_end.size() != 2)
    return fallback("weights, padding mode or dilation");
  if (params.blobs.size() > 1 &&
      (params.blobs[1].type() != CV_32F || params.blobs[1].total() != static_cast<std::size_t>(w.size[0])))
    return fallback("bias");
  ConvShape s;
  s.groups = params.get<int>("group", 1);
  s.out_channels = w.size[0];
  s.in_channels = w.size[1] * s.groups;
  s.kernel_h = static_cast<int>(opencv->kernel_size[0]);
  s.kernel_w = static_cast<int>(opencv->kernel_size[1]);
  s.stride_h = static_cast<int>(opencv->strides[0]);
  s.stride_w = static_cast<int>(opencv->strides[1]);
  s.pad_top = static_cast<int>(opencv->pads_begin[0]);
  s.pad_left = static_cast<int>(opencv->pads_begin[1]);
  s.pad_bottom = static_cast<int>(opencv->pads_end[0]);
  s.pad_right = static_cast<int>(opencv->pads_end[1]);
  if (w.size[2] != s.kernel_h || w.size[3] != s.kernel_w || !conv_unsupported_reason(s).empty())
    return fallback("shape");
  return cv::makePtr<AitwConvolutionLayer>(params, *opencv, s);
}

cv::dnn::LayerParams convolution_layer_params(const ConvShape& s, const cv::Mat& weights, const cv::Mat& bias,
                                              bool aitw) {
  cv::dnn::LayerParams lp;
  lp.name = "conv";
  lp.type = "Convolution";
  lp.set("kernel_h", s.kernel_h);
  lp.set("kernel_w", s.kernel_w);
  lp.set("stride_h", s.stride_h);
  lp.set("stride_w", s.stride_w);
  lp.set("pad_t", s.pad_top);
  lp.set("pad_l", s.pad_left);
  lp.set("pad_b", s.pad_bottom);
  lp.set("pad_r", s.pad_right);
  lp.set("group", s.groups);
  lp.set("num_output", s.out_channels);
  lp.set("bias_term", !bias.empty());
  if (aitw) lp.set(kConvolutionMark, 1);
  lp.blobs.push_back(weights.clone());
  if (!bias.empty()) lp.blobs.push_back(bias.clone());
  return lp;
}

bool aitw_convolution_active() {
  // AITW_CONV=opencv: OpenCV's convolution everywhere, aitw's other layers kept (the before/after switch
  // of bench/RESULTS.md, and a way back without a rebuild if a model ever disagrees).
  static const bool opencv_only = [] {
    const char* v = std::getenv("AITW_CONV");
    return v && std::string(v) == "opencv";
  }();
  return !opencv_only && aitw_convolution_enabled();
}

bool convolution_fusion_enabled() {
  // AITW_CONV=unfused: aitw's convolution without the residual Adds folded in (before/after runs).
  static const bool unfused = [] {
    const char* v = std::getenv("AITW_CONV");
    return v && std::string(v) == "unfused";
  }();
  return !unfused && aitw_convolution_active();
}

bool aitw_convolution_enabled() {
#if defined(__x86_64__)
  return conv_best_isa() != ConvIsa::Portable;
#else
  return true;
#endif
}

std::string convolution_kernels_in_use() {
  if (!aitw_convolution_enabled()) return "OpenCV's: no AVX2+FMA on this CPU";
  if (!aitw_convolution_active()) return "OpenCV's: AITW_CONV=opencv";
  return std::string(conv_isa_name(conv_default_isa())) + " kernels";
}

bool is_aitw_convolution(const cv::Ptr<cv::dnn::Layer>& layer) {
  return !layer.dynamicCast<AitwConvolutionLayer>().empty();
}

}  // namespace aitw::kernel
