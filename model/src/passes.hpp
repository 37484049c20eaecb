#pragma once
// The adapter's graph rewrites, one function per pass. OnnxModel::adapt (adapter.cpp) runs them in order on
// a copy of the stock graph; each returns its line of the rewrite summary, or nothing when it had nothing to
// do. Private to model/ and its tests (model/test/passes_test.cpp runs each on a small synthetic graph).
#include <optional>
#include <string>
#include <vector>

#include "aitw/kernel/yolo_decode.hpp"
#include "aitw/model/adapter.hpp"
#include "graph.hpp"

namespace aitw::model::detail {

// What a pass may read besides the graph it rewrites: the stock export as the loader found it, and the
// target input size.
struct PassContext {
  std::string label;              // the model, for errors ("model 'label': ...")
  std::string input_name;         // the image input
  InputSize native;               // the export's static input size
  InputSize input;                // the size being adapted to (a multiple of the coarsest stride)
  std::vector<HeadLevel> levels;  // the Detect head's raw level outputs, by stride
  kernel::HeadLayout layout;
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;  // AdaptOptions::precision
  bool residual_pairs = true;                                     // AdaptOptions::residual_pairs
};

using SummaryLine = std::optional<std::string>;

// Makes the Detect head's raw per-level outputs [1, 4*reg_max + nc, H/s, W/s] the graph's outputs.
SummaryLine cut_head(ox::GraphProto& g, const PassContext& c);
// Drops the nodes no graph output needs (after the cut: the stock DFL/decode tail) and the shape
// annotations, which are stale once the input size changes. No summary line.
SummaryLine prune_unreachable_nodes(ox::GraphProto& g, const PassContext& c);
// Sets the input to c.input and rewrites the spatial Reshape constants (YOLO11's attention) to match.
// Always says which size the graph now takes. Throws ModelError for a Resize with fixed output sizes.
SummaryLine retarget_input(ox::GraphProto& g, const PassContext& c);
// YOLO11's attention core (Transpose, MatMul, Mul by scale, Softmax, Transpose, MatMul) -> one
// AitwAttention node (kernel/dnn_layers.hpp).
SummaryLine fuse_attention(ox::GraphProto& g, const PassContext& c);
// OpenCV 4.6 fuses the Mul after a two-input MatMul wrongly: multiplies q by the attention scale before
// the q^T*k MatMul instead.
SummaryLine prescale_attention(ox::GraphProto& g, const PassContext& c);
// Sigmoid(x) * x -> AitwSiLU(x), so that the convolution producing x has one consumer and OpenCV fuses the
// activation into it.
SummaryLine fuse_silu(ox::GraphProto& g, const PassContext& c);

// Marks every Conv node for aitw's convolution layer (kernel/conv_layer.hpp).
SummaryLine mark_convolutions(ox::GraphProto& g, const PassContext& c);
// What aitw's layers run exactly: a nearest / asymmetric / floor Resize; a k x k stride-1 "same" MaxPool (its
// k, else 0). The passes after the marks check these again: a mark in the model as loaded is not trusted.
bool nearest_floor_resize(const ox::NodeProto& n);
int64_t same_size_max_pool(const ox::NodeProto& n);
// Marks the nearest / asymmetric / floor Resize nodes for aitw's upscale layer (kernel::kResizeMark).
SummaryLine mark_resizes(ox::GraphProto& g, const PassContext& c);
// Marks stride-1 "same" k x k MaxPool nodes (SPPF's) for aitw's pooling layer (kernel::kMaxPoolMark = k).
SummaryLine mark_max_pools(ox::GraphProto& g, const PassContext& c);
// Marked MaxPool nodes of one window in a row, each reading the one before (SPPF's three) -> one
// AitwMaxPoolChain node (kernel::kMaxPoolChainOpType) that outputs every pool's tensor.
SummaryLine chain_max_pools(ox::GraphProto& g, const PassContext& c);
// Add(skip, [AitwSiLU](Conv(x))) -> one Conv node with skip as a second input and the activation as an
// attribute (kernel::kConvResidualMark), when aitw's convolution runs it and nothing else reads the
// intermediate tensors (kernel::convolution_fusion_enabled(); AITW_CONV=unfused keeps the Adds). The node
// takes the Conv's place, or the Add's where the skip is computed after the Conv.
SummaryLine fuse_residual_adds(ox::GraphProto& g, const PassContext& c);
// Concat (channels) -> its one consumer, a convolution of aitw's, which reads the Concat's inputs where they
// are; then a channel Split whose outputs only such convolutions read (as input or fused skip) -> they read
// its input at the output's channel range (kernel::kConvInputsAttr). Same conditions as fuse_residual_adds.
SummaryLine read_concats_and_splits_in_place(ox::GraphProto& g, const PassContext& c);
// A marked nearest Resize by an integer factor whose one consumer is a 1x1 stride-1 convolution of aitw's
// that also reads an input at the output's size (a neck's Upsample -> Concat, read in place): the
// convolution reads the Resize's input instead (kernel::kConvUpscaleAttr) and the Resize goes. Same
// conditions as fuse_residual_adds.
SummaryLine fold_upsampling(ox::GraphProto& g, const PassContext& c);
// With bf16 (c.precision, where the layers run it: kernel::convolution_pairs_enabled()): a convolution of
// aitw's that runs bf16, or an fp32 depthwise 3x3 (kernel::conv_fp32_pairs), without a fused Add or
// upscaled input, whose output (after an AitwSiLU, which it then takes as kernel::kConvActivationAttr) only
// such convolutions read, as data at even channel offsets (per product where some inputs are upscaled) or,
// with c.residual_pairs, as the fused Add's skip tensor of a bf16 one (from an even channel), the
// writer or one reader running bf16 (not between two fp32 depthwise layers),
// or SPPF's AitwMaxPoolChain whose outputs only such convolutions read, writes it as bf16 channel pairs
// (kernel::kConvPairsOutAttr); they read the pairs (kernel::kConvPairsInAttr), and the chain runs on them
// (kernel::kPoolPairsAttr). Runs after chain_max_pools.
SummaryLine pass_bf16_pairs(ox::GraphProto& g, const PassContext& c);
// Baseline only (stock head kept): expands the head's [1, A] stride constant to [1, 4, A] so that OpenCV
// 4.6 can run the multiply.
SummaryLine expand_stride_mul(ox::GraphProto& g, const PassContext& c);
// Drops the initializers nothing reads any more (the cut tail, replaced constants) and the graph inputs
// that named them: they would only cost load time. No summary line.
SummaryLine prune_unused_initializers(ox::GraphProto& g, const PassContext& c);

}  // namespace aitw::model::detail
