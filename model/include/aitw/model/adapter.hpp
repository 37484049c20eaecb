#pragma once
// The model adapter: makes a stock Ultralytics YOLOv8 / YOLO11 ONNX export runnable, correct and fast on
// OpenCV 4.6's DNN module by rewriting the graph at load time (OnnxModel::adapt, onnx_model.hpp).
//
// Export recipe: `yolo export model=yolo11n.pt format=onnx opset=12` (static shapes, no NMS, no
// simplification required). What the rewrite does, and why:
//  - cuts the graph at the Detect head's per-level raw outputs [1, 4*reg_max + nc, H/s, W/s]: OpenCV 4.6
//    cannot run the head's stride multiply ([1,4,8400] x [1,8400] as a Scale layer), and DFL, decoding
//    and the class sigmoid are cheaper in aitw's decode kernel (only for anchors above threshold);
//  - re-targets the static input size by rewriting the spatial Reshape constants (YOLO11's attention);
//  - moves YOLO11's attention scale in front of the q^T·k MatMul, because OpenCV 4.6's fusion folds the
//    Mul after the two-input MatMul wrongly (coco128 mAP50-95 drops from 0.495 to 0.395).
// Each step is one pass (model/src/passes/); the adapted graph's summary has one line per pass that
// changed something.
#include <string>
#include <vector>

#include <opencv2/dnn.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/letterbox.hpp"

namespace aitw::model {

using kernel::InputSize;

struct HeadLevel {
  std::string tensor;  // name of the raw level output in the rewritten graph
  int stride = 0;
};

struct AdaptOptions {
  bool cut_head = true;       // cut at the raw per-level head outputs (what aitw runs)
  bool fix_attention = true;  // move YOLO11's attention scale before the MatMul
  // Replace slow OpenCV 4.6 layers with aitw's custom DNN layers (kernel/dnn_layers.hpp): SiLU for every
  // Sigmoid*x pair. Off = the same rewritten graph with OpenCV's own layers (the benchmark baseline).
  bool custom_layers = true;
  // With custom_layers: convolutions read a Concat's inputs and a channel Split's parts where they are
  // (read_concats_and_splits_in_place) instead of OpenCV copying them. Off: the copies, for before/after
  // measurements in one process.
  bool read_in_place = true;
  // With read_in_place: a 1x1 convolution after an Upsample -> Concat reads the Upsample's input and computes
  // that part of its sum at the input's size (fold_upsampling; the sums split in two, so not bit-exact with
  // the unfolded graph). Off: the Resize runs, for before/after measurements and bit-exact comparisons.
  bool fold_upsampling = true;
  // With custom_layers: the convolutions' multiplies in bf16 where the CPU has AVX512_BF16 (weights and
  // inputs rounded to bf16, sums in fp32), else fp32. See kernel::ConvPrecision and `--precision`.
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;
  // With bf16: a tensor that only bf16 convolutions read (directly, or through SPPF's max pools, which then
  // run on the pairs) is written by its producing convolution as bf16 channel pairs, which they read as they
  // are (pass_bf16_pairs; the output bit for bit the same). Off: fp32 between them, for before/after
  // measurements in one process.
  bool bf16_pairs = true;
  // With bf16_pairs: a bottleneck's fused Add may read its skip tensor as pairs too (a C3k2's cv1 then writes
  // pairs for all its readers), adding the bf16 rounding of the skip's values: not bit for bit the graph
  // with fp32 between the convolutions. Off: skip tensors stay fp32, for before/after measurements.
  bool residual_pairs = true;
  // Baseline only: keep the stock head and just expand the stride constant so that OpenCV 4.6 can run
  // it. Used to measure the stock graph against the rewritten one.
  bool expand_stride_mul = false;
};

struct AdaptedGraph {
  std::string onnx_bytes;  // serialized rewritten ModelProto, for cv::dnn::readNetFromONNX
  InputSize input;
  std::vector<HeadLevel> levels;          // ordered by stride; empty when the head was not cut
  std::vector<std::string> output_names;  // tensors to request from forward()
  std::vector<std::string> fixes;         // human-readable list of what was rewritten
  int nodes_before = 0, nodes_after = 0;
  std::string summary() const;
};

// Reads an adapted graph into an OpenCV net (registering aitw's custom layers first), CPU backend.
// Throws ModelError naming `label` when OpenCV rejects it.
cv::dnn::Net load_net(const AdaptedGraph& graph, const std::string& label);

// What to request from net.forward() to get graph.output_names. OpenCV 4.6's importer puts an Identity layer
// named after each graph output behind the layer that computes it, and that layer copies (the head's three
// outputs: 3.6 MB at 480x640, ~0.5 ms a frame); asking for the Concat or Convolution layer itself gives
// the same tensors without running the copies. Names it cannot resolve that way are kept.
std::vector<std::string> forward_output_names(const cv::dnn::Net& net, const AdaptedGraph& graph);

}  // namespace aitw::model
