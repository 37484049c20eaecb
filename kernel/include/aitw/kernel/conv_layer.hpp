#pragma once
// aitw's convolution as an OpenCV DNN layer (kernel/conv.hpp does the arithmetic). register_dnn_layers()
// registers create_convolution_layer under "Convolution", the type OpenCV's ONNX importer gives every Conv
// node; it returns aitw's layer only for nodes that the model adapter marked with the attribute
// kConvolutionMark (AdaptOptions::custom_layers) and that aitw's kernels run, and OpenCV's own
// ConvolutionLayer for everything else (unmarked graphs such as the --opencv-layers baseline, dilation,
// grouped convolutions other than depthwise, "SAME" auto-padding, weights that are not constants).
#include <optional>
#include <string>

#include <opencv2/dnn.hpp>

#include "aitw/kernel/conv.hpp"

namespace aitw::kernel {

inline constexpr const char* kConvolutionMark = "aitw_conv";
// Set by the adapter's fuse_residual_adds on a marked convolution whose output went (through an optional
// AitwSiLU) into an Add: the node then has a second input, the skip tensor, added in the kernel's output
// loop after the activation named by kConvActivationAttr ("silu", or absent: none).
inline constexpr const char* kConvResidualMark = "aitw_residual";
inline constexpr const char* kConvActivationAttr = "aitw_activation";
// Set by the adapter's fold_concats_and_splits on a marked convolution that reads a Concat's inputs or a
// channel Split's input in place: for each of the node's non-constant inputs in order, the channels it
// gives as (first channel, count) pairs, count -1 for all from the first. The data inputs' channels, in
// order, are the convolution's input channels; with kConvResidualMark the last pair is the skip tensor's
// (its count -1 or the output channels).
inline constexpr const char* kConvInputsAttr = "aitw_inputs";
// Set by the adapter's fold_upsampling on a marked 1x1 stride-1 unpadded convolution that reads a nearest
// Resize's input in place of its output (a neck's Upsample -> Concat -> 1x1): one integer factor per data
// input, 1 for an input at the output's size. The upscaled inputs' part of the sum is computed at their own
// size, W_up . up(x) = up(W_up . x), and added upscaled before the activation.
inline constexpr const char* kConvUpscaleAttr = "aitw_upscale";
// Set by the adapter's mark_convolutions when the model runs in bf16 (AdaptOptions::precision): "bf16". The
// layer then packs bf16 weights and runs the bf16 kernels where conv_bf16_supported() (fp32 otherwise).
inline constexpr const char* kConvPrecisionAttr = "aitw_precision";
// Set by the adapter's pass_bf16_pairs: kConvPairsOutAttr (1) on a convolution that writes its output as
// bf16 channel pairs (ConvInput::pairs' layout, in the first half of its fp32 blob), because only
// convolutions that take pairs read it (a bf16 one, or an fp32 depthwise 3x3 where conv_fp32_pairs) and it or
// one of them runs bf16;
// kConvPairsInAttr on those, one 0 / 1 per data input: which inputs are pairs, and with kConvResidualMark
// optionally one more for the skip tensor (a bf16 convolution that is not depthwise then adds its pairs,
// widened, to its fp32 sum: PackedConv::forward's residual_pairs). A layer that would not run
// them (fp32 other than those depthwise layers, OpenCV's) refuses to load (one with upscaled inputs, whose
// products are packed when the net is set up: then), naming itself; so does one with upscaled inputs marked
// to write pairs.
inline constexpr const char* kConvPairsOutAttr = "aitw_pairs_out";
inline constexpr const char* kConvPairsInAttr = "aitw_pairs_in";

cv::Ptr<cv::dnn::Layer> create_convolution_layer(cv::dnn::LayerParams& params);

// False on x86-64 CPUs without AVX2+FMA: there the portable kernels (SSE2, no FMA) measured 2x slower than
// OpenCV's own SIMD dispatch (253 vs 126 ms for YOLO11n's convolutions, one thread), so OpenCV keeps them.
// On aarch64 the portable kernels are NEON with FMA and stay on.
bool aitw_convolution_enabled();
// aitw_convolution_enabled() and not switched off by AITW_CONV=opencv: marked convolutions get aitw's layer.
bool aitw_convolution_active();
// aitw_convolution_active() and not AITW_CONV=unfused: the adapter may fold residual Adds into convolutions.
bool convolution_fusion_enabled();
// convolution_fusion_enabled(), the convolutions run bf16 when asked (conv_bf16_supported(), AVX-512
// kernels) and not switched off by AITW_CONV=unpaired: the adapter may keep bf16 channel pairs between them.
bool convolution_pairs_enabled();
// For the load log: "avx512 kernels", "avx2 kernels", ... or why OpenCV's run instead.
std::string convolution_kernels_in_use();
// For InitOk.providers: "aitw avx512 kernels, bf16", "aitw avx2 kernels, fp32" (bf16 asked of a CPU without
// it runs fp32), or "OpenCV's: ..." when aitw's convolution does not run.
std::string convolution_description(ConvPrecision asked);

// True when `layer` is aitw's convolution (tests check that a loaded net uses it).
bool is_aitw_convolution(const cv::Ptr<cv::dnn::Layer>& layer);

// How one of aitw's convolutions reads and writes its activations, for the profile (`aitw bench layers`).
// fp32 layers read NCHW as it is (no reorder anywhere) and write it, or, a depthwise 3x3 between layers that
// take pairs (conv_fp32_pairs), read and write pairs as they are. A bf16 layer reads each data input either
// as bf16 channel pairs (kConvPairsInAttr: as they are) or as fp32, which it converts to pairs while it packs
// its tiles: that conversion is the layout's reorder, fused into the layer that reads the tensor.
struct ConvLayout {
  ConvPrecision precision = ConvPrecision::Fp32;  // what runs (with a bf16 ask: fp32 where the CPU lacks it)
  int data_inputs = 0;                            // tensors read as data (a fused Add's skip is not one)
  int pair_inputs = 0;                            // read as bf16 channel pairs
  int converted_inputs = 0;                       // bf16 only: fp32 inputs converted to pairs (reorders)
  bool pairs_out = false;                         // the output written as bf16 channel pairs
  bool residual_pairs = false;                    // the fused Add's skip tensor read as bf16 channel pairs
};
// The layout of `layer` when it is aitw's convolution with its weights packed (a loaded net), else nullopt.
std::optional<ConvLayout> convolution_layout(const cv::Ptr<cv::dnn::Layer>& layer);

}  // namespace aitw::kernel
