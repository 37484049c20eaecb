#pragma once
// The model adapter: makes a stock Ultralytics YOLOv8 / YOLO11 ONNX export runnable, correct and fast on
// OpenCV 4.6's DNN module by rewriting the graph at load time.
//
// Export recipe: `yolo export model=yolo11n.pt format=onnx opset=12` (static shapes, no NMS, no
// simplification required). What the rewrite does, and why:
//  - cuts the graph at the Detect head's per-level raw outputs [1, 4*reg_max + nc, H/s, W/s]: OpenCV 4.6
//    cannot run the head's stride multiply ([1,4,8400] x [1,8400] as a Scale layer), and DFL, decoding
//    and the class sigmoid are cheaper in aitw's decode kernel (only for anchors above threshold);
//  - re-targets the static input size by rewriting the spatial Reshape constants (YOLO11's attention);
//  - moves YOLO11's attention scale in front of the q^T·k MatMul, because OpenCV 4.6's fusion folds the
//    Mul after the two-input MatMul wrongly (coco128 mAP50-95 drops from 0.495 to 0.395).
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/dnn.hpp>

#include "aitw/kernel/letterbox.hpp"
#include "aitw/kernel/yolo_decode.hpp"

namespace aitw::model {

using kernel::InputSize;

// Every problem with a model file: the message names the file and what was not found.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HeadLevel {
  std::string tensor;  // name of the raw level output in the rewritten graph
  int stride = 0;
};

struct ModelMetadata {
  std::vector<std::string> class_names;
  std::string names_source;  // "metadata_props" or the names file used
  int max_stride = 32;
  InputSize native_input;  // the export's static input size
  std::string description;
};

struct AdaptOptions {
  bool cut_head = true;       // cut at the raw per-level head outputs (what aitw runs)
  bool fix_attention = true;  // move YOLO11's attention scale before the MatMul
  // Replace slow OpenCV 4.6 layers with aitw's custom DNN layers (kernel/dnn_layers.hpp): SiLU for every
  // Sigmoid*x pair. Off = the same rewritten graph with OpenCV's own layers (the benchmark baseline).
  bool custom_layers = true;
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

class OnnxModel {
 public:
  // Parses and validates a stock export; throws ModelError naming `path` and the reason.
  static OnnxModel load(const std::string& path, const std::string& fallback_names_file = "");
  static OnnxModel from_bytes(const std::string& bytes, const std::string& label,
                              const std::string& fallback_names_file = "");

  OnnxModel(OnnxModel&&) noexcept;
  OnnxModel& operator=(OnnxModel&&) noexcept;
  ~OnnxModel();

  const std::string& label() const { return label_; }
  const std::string& sha256() const { return sha256_; }
  const ModelMetadata& metadata() const { return metadata_; }
  const kernel::HeadLayout& head_layout() const { return layout_; }
  const std::vector<HeadLevel>& levels() const { return levels_; }  // strides found in the stock graph
  bool has_attention() const { return attention_blocks_ > 0; }

  // Rewrites the graph for `input` (multiples of the max stride). Throws ModelError.
  AdaptedGraph adapt(InputSize input, const AdaptOptions& options = {}) const;

 private:
  struct Impl;
  OnnxModel() = default;
  std::unique_ptr<Impl> impl_;
  std::string label_, sha256_;
  ModelMetadata metadata_;
  kernel::HeadLayout layout_;
  std::vector<HeadLevel> levels_;
  int attention_blocks_ = 0;
};

// Reads an adapted graph into an OpenCV net (registering aitw's custom layers first), CPU backend.
// Throws ModelError naming `label` when OpenCV rejects it.
cv::dnn::Net load_net(const AdaptedGraph& graph, const std::string& label);

// Parses Ultralytics' `names` metadata, a Python dict literal: {0: 'person', 1: 'bicycle', ...}.
std::vector<std::string> parse_names_dict(const std::string& text);
// Reads a names file: one class name per line.
std::vector<std::string> read_names_file(const std::string& path);

}  // namespace aitw::model
