#pragma once
// A stock Ultralytics YOLOv8 / YOLO11 detection export, parsed and validated: the Detect head found by
// structure (not by node names), its layout, the export's metadata, and the graph rewrite for an input size
// (adapter.hpp says what the rewrite does and why).
#include <memory>
#include <string>
#include <vector>

#include "aitw/kernel/yolo_decode.hpp"
#include "aitw/model/adapter.hpp"
#include "aitw/model/error.hpp"

namespace aitw::model {

struct ModelMetadata {
  std::vector<std::string> class_names;
  std::string names_source;  // "metadata_props" or the names file used
  int max_stride = 32;
  InputSize native_input;  // the export's static input size
  std::string description;
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

}  // namespace aitw::model
