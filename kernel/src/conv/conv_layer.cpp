#include "aitw/kernel/conv_layer.hpp"

#include <algorithm>
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
        ranges_(input_ranges(params, residual_)),
        precision_(params.get<std::string>(kConvPrecisionAttr, "") == "bf16" ? ConvPrecision::Bf16
                                                                             : ConvPrecision::Fp32),
        fixed_activation_(params.get<std::string>(kConvActivationAttr, "") == "silu" ? ConvActivation::SiLU
                                                                                     : ConvActivation::None),
        upscale_(upscale_factors(params, ranges_.size() - (residual_ ? 1 : 0))),
        pairs_out_(params.get<int>(kConvPairsOutAttr, 0) != 0),
        pairs_in_(pair_inputs(params, ranges_.size() - (residual_ ? 1 : 0), residual_)),
        residual_pairs_(residual_ && pairs_in_.size() == ranges_.size() && pairs_in_.back()) {
    if (residual_ && pairs_in_.size() == ranges_.size()) pairs_in_.pop_back();  // the skip's flag
    setParamsFrom(params);
    const bool pairs = pairs_out_ || residual_pairs_ ||
                       std::find(pairs_in_.begin(), pairs_in_.end(), true) != pairs_in_.end();
    // Upscaled inputs: pairs in (both products read them as any bf16 1x1 does), not out (the addend's pass
    // runs on the fp32 output).
    if (pairs_out_ && !upscale_.empty())
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': bf16 channel pairs out (" +
                                         kConvPairsOutAttr + ") take no " + kConvUpscaleAttr);
    for (std::size_t i = 0; i < pairs_in_.size(); ++i)
      if (pairs_in_[i] && ranges_[i].first % 2)
        CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': input " + std::to_string(i) +
                                           " of bf16 channel pairs is read from odd channel " +
                                           std::to_string(ranges_[i].first));
    if (residual_pairs_ && ranges_.back().first % 2)
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name +
                                         "': its residual of bf16 channel pairs is read from odd channel " +
                                         std::to_string(ranges_.back().first));
    if (!upscale_.empty() && (residual_ || shape_.kernel_h != 1 || shape_.kernel_w != 1 ||
                              shape_.stride_h != 1 || shape_.stride_w != 1 || shape_.pad_top ||
                              shape_.pad_left || shape_.pad_bottom || shape_.pad_right || shape_.groups != 1))
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvUpscaleAttr +
                                         " needs a 1x1 stride-1 unpadded convolution without a fused Add");
    kernel_size = parsed.kernel_size;
    strides = parsed.strides;
    dilations = parsed.dilations;
    pads_begin = parsed.pads_begin;
    pads_end = parsed.pads_end;
    adjust_pads = parsed.adjust_pads;
    padMode = parsed.padMode;
    numOutput = parsed.numOutput;
    reset_weights();
    // Pairs into or out of an fp32 layer: a depthwise 3x3 (conv_fp32_pairs). (With upscaled inputs packed_
    // is built in finalize, which checks the same.)
    if (residual_pairs_ && packed_ && (packed_->precision() != ConvPrecision::Bf16 || shape_.depthwise()))
      CV_Error(cv::Error::StsBadArg,
               "convolution '" + params.name +
                   "': marked to read its residual as bf16 channel pairs, which takes a "
                   "bf16 convolution that is not depthwise; this one " +
                   (shape_.depthwise() ? "is depthwise" : "runs fp32 here") + " (" +
                   convolution_description(precision_) + ")");
    if (pairs && packed_ && packed_->precision() != ConvPrecision::Bf16 &&
        !conv_fp32_pairs(shape_, packed_->isa()))
      CV_Error(
          cv::Error::StsBadArg,
          "convolution '" + params.name +
              "': marked for bf16 channel pairs, but it runs fp32 here, where only "
              "a depthwise 3x3 of stride 1 and padding 1 on a CPU with AVX512_BF16 reads or writes them (" +
              convolution_description(precision_) + ")");
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    const std::size_t data = ranges_.size() - (residual_ ? 1 : 0);
    if (inputs.size() != ranges_.size())
      CV_Error(cv::Error::StsBadArg, "convolution '" + name + "': " + std::to_string(inputs.size()) +
                                         " inputs, expects " + std::to_string(ranges_.size()));
    int channels = 0;
    // Each input at the size the convolution reads it (kConvUpscaleAttr's factor times its own).
    const auto sized = [&](std::size_t i) {
      MatShape s = inputs[i];
      if (s.size() == 4 && !upscale_.empty()) s[2] *= upscale_[i], s[3] *= upscale_[i];
      return s;
    };
    const MatShape first = sized(0);
    for (std::size_t i = 0; i < data; ++i) {
      const MatShape in = sized(i);
      if (in.size() != 4 || in[0] != first[0] || in[2] != first[2] || in[3] != first[3])
        CV_Error(cv::Error::StsBadSize,
                 "convolution '" + name + "': input " + std::to_string(i) + " " +
                     cv::dnn::toString(inputs[i]) + (upscale_.empty() ? "" : " upscaled") +
                     " does not match input 0 " + cv::dnn::toString(first) + " in batch, height and width");
      channels += range_channels(i, in[1]);
    }
    if (channels != shape_.in_channels)
      CV_Error(cv::Error::StsBadSize, "convolution '" + name + "': its inputs give " +
                                          std::to_string(channels) + " channels, its weights take " +
                                          std::to_string(shape_.in_channels));
    CV_Assert(shape_.out_h(first[2]) > 0 && shape_.out_w(first[3]) > 0);
    outputs.assign(1,
                   MatShape{first[0], shape_.out_channels, shape_.out_h(first[2]), shape_.out_w(first[3])});
    // The fused Add takes no broadcast: the skip tensor is the output's shape (a bottleneck's), or has
    // the output's channels at its channel offset (a Split's part read in place).
    if (residual_) {
      const MatShape& r = inputs.back();
      MatShape part = r;
      if (part.size() == 4) part[1] = range_channels(data, r[1]);
      if (part != outputs[0])
        CV_Error(cv::Error::StsBadSize, "convolution '" + name + "': residual input " + cv::dnn::toString(r) +
                                            " does not give the output's shape " +
                                            cv::dnn::toString(outputs[0]));
    }
    return false;
  }

  // OpenCV calls finalize on every (re)allocation of the net, before it offers BatchNorm/Scale (tryFuse)
  // and activations (setActivation) again: start over from the layer's own weights each time.
  void finalize(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays) override {
    if (!upscale_.empty()) {  // which weights' columns go to which product: the inputs' channels
      std::vector<cv::Mat> in;
      inputs_arr.getMatVector(in);
      in_channels_.clear();
      for (std::size_t i = 0; i < upscale_.size() && i < in.size(); ++i)
        in_channels_.push_back(range_channels(i, in[i].size[1]));
    }
    reset_weights();
    // Pairs into a layer with upscaled inputs: both of its products must run bf16 (they do together:
    // conv_bf16_pays looks at whether it is depthwise, which they share).
    const bool in_pairs = std::find(pairs_in_.begin(), pairs_in_.end(), true) != pairs_in_.end();
    if (in_pairs && !upscale_.empty() && packed_ && low_ &&
        (packed_->precision() != ConvPrecision::Bf16 || low_->precision() != ConvPrecision::Bf16))
      CV_Error(cv::Error::StsBadArg, "convolution '" + name +
                                         "': marked for bf16 channel pairs, but it runs fp32 here and reads "
                                         "pairs (" +
                                         convolution_description(precision_) + ")");
  }

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
    // in the epilogue. Without one, an activation the adapter already folded in (kConvActivationAttr: a
    // pair tensor's producer took its AitwSiLU) stays: a second one would run OpenCV's layer after it.
    if (residual_ || fixed_activation_ != ConvActivation::None) return false;
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
    cv::Mat& y = out[0];
    CV_Assert(in.size() == ranges_.size() && y.type() == CV_32F && y.step[1] * y.size[1] <= y.step[0]);
    // Within an image every tensor is contiguous; images may be apart (an output slice of a fused Concat).
    const auto planes_ok = [](const cv::Mat& m) {
      return m.dims == 4 && m.type() == CV_32F && m.step[1] * m.size[1] <= m.step[0] &&
             m.step[2] == m.size[3] * sizeof(float) && m.step[1] == m.size[2] * m.step[2];
    };
    const std::size_t data = ranges_.size() - (residual_ ? 1 : 0);
    ConvInput inputs[kMaxConvInputs];
    CV_Assert(data >= 1 && data <= static_cast<std::size_t>(kMaxConvInputs));
    for (std::size_t i = 0; i < data; ++i) {
      CV_Assert(planes_ok(in[i]));
      // An input of pairs: plane k holds channels 2k and 2k + 1 (kConvPairsInAttr, even first channels).
      const std::ptrdiff_t first = pairs_in_[i] ? ranges_[i].first / 2 : ranges_[i].first;
      inputs[i] = {in[i].ptr<float>() + first * static_cast<std::ptrdiff_t>(in[i].step[1] / sizeof(float)),
                   static_cast<std::ptrdiff_t>(in[i].step[0] / sizeof(float)),
                   range_channels(i, in[i].size[1]), static_cast<bool>(pairs_in_[i])};
    }
    const float* skip = nullptr;
    std::ptrdiff_t skip_stride = 0;
    if (residual_) {
      const cv::Mat& r = in.back();
      CV_Assert(planes_ok(r));
      // Pairs: plane k holds channels 2k and 2k + 1 (an even first channel).
      const std::ptrdiff_t first = residual_pairs_ ? ranges_.back().first / 2 : ranges_.back().first;
      skip = r.ptr<float>() + first * static_cast<std::ptrdiff_t>(r.step[1] / sizeof(float));
      skip_stride = static_cast<std::ptrdiff_t>(r.step[0] / sizeof(float));
    }
    if (!upscale_.empty()) return forward_upscaled(inputs, data, y);
    const int h = in[0].size[2], w = in[0].size[3];
    workspace_.resize(packed_->workspace_floats(h, w));
    packed_->forward(inputs, static_cast<int>(data), in[0].size[0], h, w, y.ptr<float>(),
                     static_cast<std::ptrdiff_t>(y.step[0] / sizeof(float)), activation_, workspace_.data(),
                     workspace_.size(), skip, skip_stride, nullptr, pairs_out_, residual_pairs_);
  }

  // kConvUpscaleAttr: the upscaled inputs' product at their size into z_, the others' at the output's with
  // the bias and act(... + up(z_)) in its output loop.
  void forward_upscaled(const ConvInput* inputs, std::size_t data, cv::Mat& y) {
    CV_Assert(packed_ && low_ && in_channels_.size() == data);
    ConvInput up[kMaxConvInputs], rest[kMaxConvInputs];
    int nup = 0, nrest = 0, f = 1;
    for (std::size_t i = 0; i < data; ++i) {
      if (upscale_[i] > 1) {
        CV_Assert(f == 1 || f == upscale_[i]);
        f = upscale_[i];
        up[nup++] = inputs[i];
      } else {
        rest[nrest++] = inputs[i];
      }
    }
    const int n = y.size[0], co = y.size[1], h = y.size[2], w = y.size[3], lh = h / f, lw = w / f;
    const std::ptrdiff_t low_plane = static_cast<std::ptrdiff_t>(lh) * lw,
                         out_stride = y.step[0] / sizeof(float);
    z_.resize(static_cast<std::size_t>(n) * co * low_plane);
    workspace_.resize(std::max(low_->workspace_floats(lh, lw), packed_->workspace_floats(h, w)));
    low_->forward(up, nup, n, lh, lw, z_.data(), co * low_plane, ConvActivation::None, workspace_.data(),
                  workspace_.size());
    // The low product added, upscaled, in each unit's output loop (before the activation), while the
    // unit's tiles are in cache. As a pass of its own over the output it took 0.08 ms (30 x 40) and
    // 0.12-0.14 ms (60 x 80) in YOLO11n's forward.
    const ConvUpscaledAddend addend{z_.data(), co * low_plane, f};
    packed_->forward(rest, nrest, n, h, w, y.ptr<float>(), out_stride, activation_, workspace_.data(),
                     workspace_.size(), nullptr, 0, &addend);
  }

  std::optional<ConvLayout> layout() const {
    if (!packed_) return std::nullopt;
    ConvLayout l;
    l.precision = packed_->precision();
    l.data_inputs = static_cast<int>(pairs_in_.size());
    l.pair_inputs = static_cast<int>(std::count(pairs_in_.begin(), pairs_in_.end(), true));
    if (l.precision == ConvPrecision::Bf16) l.converted_inputs = l.data_inputs - l.pair_inputs;
    l.pairs_out = pairs_out_;
    l.residual_pairs = residual_pairs_;
    return l;
  }

  int64 getFLOPS(const std::vector<MatShape>& inputs, const std::vector<MatShape>& outputs) const override {
    const int64 taps = static_cast<int64>(shape_.kernel_h) * shape_.kernel_w;
    (void)inputs;
    return 2 * cv::dnn::total(outputs[0]) * taps * (shape_.in_channels / shape_.groups);
  }

 private:
  // kConvInputsAttr's pairs, or every input whole: one data input, then the skip tensor if any.
  static std::vector<std::pair<int, int>> input_ranges(const cv::dnn::LayerParams& params, bool residual) {
    if (!params.has(kConvInputsAttr)) return std::vector<std::pair<int, int>>(residual ? 2 : 1, {0, -1});
    const cv::dnn::DictValue& v = params.get(kConvInputsAttr);
    if (v.size() % 2 != 0 || v.size() / 2 < (residual ? 2 : 1) ||
        v.size() / 2 > kMaxConvInputs + (residual ? 1 : 0))
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvInputsAttr + " has " +
                                         std::to_string(v.size()) +
                                         " values, not (first, count) pairs for 1 to " +
                                         std::to_string(kMaxConvInputs) + " inputs");
    std::vector<std::pair<int, int>> r;
    for (int i = 0; i < v.size(); i += 2) {
      r.emplace_back(v.get<int>(i), v.get<int>(i + 1));
      if (r.back().first < 0 || r.back().second == 0 || r.back().second < -1)
        CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvInputsAttr + " pair " +
                                           std::to_string(i / 2) + " is not a first channel and a count");
    }
    return r;
  }
  // kConvUpscaleAttr's factors, one per data input; empty when absent or all 1.
  static std::vector<int> upscale_factors(const cv::dnn::LayerParams& params, std::size_t data) {
    if (!params.has(kConvUpscaleAttr)) return {};
    const cv::dnn::DictValue& v = params.get(kConvUpscaleAttr);
    std::vector<int> f;
    bool any = false, plain = false;
    for (int i = 0; i < v.size(); ++i) {
      f.push_back(v.get<int>(i));
      any = any || f.back() > 1;
      plain = plain || f.back() == 1;
      if (f.back() < 1 || f.back() > 16)
        CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvUpscaleAttr + " factor " +
                                           std::to_string(f.back()) + " is not an integer from 1 to 16");
    }
    if (f.size() != data)
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvUpscaleAttr + " has " +
                                         std::to_string(f.size()) + " factors for " + std::to_string(data) +
                                         " data inputs");
    if (any && !plain)
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvUpscaleAttr +
                                         " upscales every input; one must be at the output's size");
    for (int x : f)
      if (x > 1 && x != *std::max_element(f.begin(), f.end()))
        CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvUpscaleAttr +
                                           " has different factors; the upscaled inputs share one");
    return any ? f : std::vector<int>{};
  }
  // kConvPairsInAttr: one flag per data input (all 0 when absent), and with a residual optionally one more,
  // the skip tensor's.
  static std::vector<char> pair_inputs(const cv::dnn::LayerParams& params, std::size_t data, bool residual) {
    if (!params.has(kConvPairsInAttr)) return std::vector<char>(data, 0);
    const cv::dnn::DictValue& v = params.get(kConvPairsInAttr);
    if (static_cast<std::size_t>(v.size()) != data &&
        (!residual || static_cast<std::size_t>(v.size()) != data + 1))
      CV_Error(cv::Error::StsBadArg, "convolution '" + params.name + "': " + kConvPairsInAttr + " has " +
                                         std::to_string(v.size()) + " flags for " + std::to_string(data) +
                                         " data inputs" + (residual ? " and a residual" : ""));
    std::vector<char> f;
    for (int i = 0; i < v.size(); ++i) f.push_back(v.get<int>(i) != 0);
    return f;
  }
  // The channels input i gives out of its `available`; throws when the range runs past them.
  int range_channels(std::size_t i, int available) const {
    const auto [first, count] = ranges_[i];
    const int n = count < 0 ? available - first : count;
    if (n <= 0 || first + n > available)
      CV_Error(cv::Error::StsBadSize, "convolution '" + name + "': input " + std::to_string(i) + " has " +
                                          std::to_string(available) + " channels, the layer reads " +
                                          std::to_string(first) + ".." + std::to_string(first + n - 1));
    return n;
  }

  void reset_weights() {
    activation_ = fixed_activation_;
    const cv::Mat& wm = blobs[0];
    weights_.assign(wm.ptr<float>(), wm.ptr<float>() + wm.total());
    bias_.assign(shape_.out_channels, 0.f);
    if (blobs.size() > 1 && blobs[1].total() == static_cast<std::size_t>(shape_.out_channels))
      bias_.assign(blobs[1].ptr<float>(), blobs[1].ptr<float>() + shape_.out_channels);
    pack();
  }
  void pack() {
    if (upscale_.empty()) {
      packed_ =
          std::make_unique<PackedConv>(shape_, weights_.data(), bias_.data(), conv_default_isa(), precision_);
      return;
    }
    // Two 1x1 products over the weights' columns: the upscaled inputs' (no bias) and the others' (the bias).
    // Before finalize the inputs' channels are unknown: nothing to pack yet.
    packed_.reset();
    low_.reset();
    int ci = 0;
    for (int c : in_channels_) ci += c;
    if (in_channels_.size() != upscale_.size() || ci != shape_.in_channels) return;
    const int co = shape_.out_channels;
    std::vector<float> wu, wr;
    for (int o = 0; o < co; ++o)
      for (std::size_t i = 0, c0 = 0; i < in_channels_.size(); c0 += in_channels_[i++]) {
        const float* src = weights_.data() + static_cast<std::size_t>(o) * ci + c0;
        (upscale_[i] > 1 ? wu : wr).insert((upscale_[i] > 1 ? wu : wr).end(), src, src + in_channels_[i]);
      }
    ConvShape su = shape_, sr = shape_;
    su.in_channels = static_cast<int>(wu.size() / co);
    sr.in_channels = static_cast<int>(wr.size() / co);
    // bf16: each part keeps its channel's int8 grid, which only the whole row shows (the part without the
    // row's largest weight is on no grid of its own, and its weights would be rounded to bf16).
    std::vector<double> grid(co);
    for (int o = 0; o < co; ++o)
      grid[o] = conv_int8_grid_scale(weights_.data() + static_cast<std::size_t>(o) * ci,
                                     static_cast<std::size_t>(ci));
    low_ = std::make_unique<PackedConv>(su, wu.data(), nullptr, conv_default_isa(), precision_, grid.data());
    packed_ = std::make_unique<PackedConv>(sr, wr.data(), bias_.data(), conv_default_isa(), precision_,
                                           grid.data());
  }

  ConvShape shape_;
  bool residual_;                            // a last input added after the activation (adapter's fused Add)
  std::vector<std::pair<int, int>> ranges_;  // per input: (first channel, count or -1), residual last
  ConvPrecision precision_;                  // asked for; packed_->precision() is what runs
  ConvActivation fixed_activation_;          // the activation the adapter folded in with the Add
  std::vector<float> weights_, bias_;        // after folded BatchNorm / Scale
  std::vector<int> upscale_;                 // kConvUpscaleAttr per data input; empty: none
  bool pairs_out_;                           // kConvPairsOutAttr: the output written as bf16 channel pairs
  std::vector<char> pairs_in_;               // kConvPairsInAttr per data input
  bool residual_pairs_;                      // kConvPairsInAttr's flag for the skip tensor
  std::vector<int> in_channels_;             // with upscale_: each data input's channels (from finalize)
  std::unique_ptr<PackedConv> packed_;       // with upscale_: the inputs at the output's size
  std::unique_ptr<PackedConv> low_;          // with upscale_: the upscaled inputs, at their own size
  ConvActivation activation_ = ConvActivation::None;
  std::vector<float> workspace_;  // reused across frames; a net's forwards never overlap
  std::vector<float> z_;          // with upscale_: the low product
};

}  // namespace

cv::Ptr<cv::dnn::Layer> create_convolution_layer(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::BaseConvolutionLayer> opencv = cv::dnn::ConvolutionLayer::create(params);
  if (!params.has(kConvolutionMark) || params.blobs.empty()) return opencv;
  // The adapter fuses Adds and reads Concats / Splits in place only in convolutions aitw runs
  // (convolution_fusion_enabled, supported shapes): OpenCV's layer would take the extra inputs for weights.
  const bool fused = params.get<int>(kConvResidualMark, 0) != 0 || params.has(kConvInputsAttr) ||
                     params.has(kConvUpscaleAttr) || params.has(kConvPairsOutAttr) ||
                     params.has(kConvPairsInAttr);
  const auto fallback = [&](const char* why) -> cv::Ptr<cv::dnn::Layer> {
    if (fused)
      CV_Error(cv::Error::StsNotImplemented, "convolution '" + params.name +
                                                 "' has a fused residual Add, inputs read in place or "
                                                 "upscaled, or bf16 channel pairs, that only "
                                                 "aitw's layer runs: " +
                                                 why);
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

bool convolution_pairs_enabled() {
  static const bool unpaired = [] {
    const char* v = std::getenv("AITW_CONV");
    return v && std::string(v) == "unpaired";
  }();
  return !unpaired && convolution_fusion_enabled() && conv_bf16_supported() &&
         conv_default_isa() == ConvIsa::Avx512;
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

std::string convolution_description(ConvPrecision asked) {
  if (!aitw_convolution_active()) return convolution_kernels_in_use();
  const bool bf16 =
      asked == ConvPrecision::Bf16 && conv_bf16_supported() && conv_default_isa() == ConvIsa::Avx512;
  return "aitw " + convolution_kernels_in_use() + ", " + (bf16 ? "bf16" : "fp32");
}

bool is_aitw_convolution(const cv::Ptr<cv::dnn::Layer>& layer) {
  return !layer.dynamicCast<AitwConvolutionLayer>().empty();
}

std::optional<ConvLayout> convolution_layout(const cv::Ptr<cv::dnn::Layer>& layer) {
  const auto conv = layer.dynamicCast<AitwConvolutionLayer>();
  return conv.empty() ? std::nullopt : conv->layout();
}

}  // namespace aitw::kernel
