#pragma once
// `aitw model export`: the graph aitw runs, as a standard ONNX file for other engines — the stock export
// cut at the raw head outputs and re-targeted to one input size, with no aitw custom layers and none of the
// OpenCV-specific fixes. bench/peer/run.sh gives it to ONNX Runtime, so that both engines run the same
// network.
#include <iosfwd>
#include <string>

#include "aitw/model/adapter.hpp"

namespace aitw::jobs {

struct ModelExport {
  std::string model;         // reference: path, name or name@version (model/lookup.hpp)
  model::InputSize input{};  // height, width: multiples of the model's stride
  std::string out;           // the .onnx file written (atomically: a temporary file, then renamed)
};

// 0, or 2 with one error line (unknown model, bad size, unwritable output). Prints the rewrite summary.
int run_model_export(const ModelExport& job, std::ostream& out);

}  // namespace aitw::jobs
