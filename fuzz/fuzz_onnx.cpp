// The ONNX model adapter on any bytes: OnnxModel::from_bytes and adapt() must produce a model and a
// rewritten graph, or throw ModelError — never crash, hang, read out of bounds or allocate without bound.
// (cv::dnn::readNetFromONNX is not fuzzed: it is OpenCV's importer, not aitw code.)
//
// Checked on success: the head's levels are sorted by stride and divide the coarsest; the layout matches
// the class names; every adapted graph serializes to a ModelProto that parses again and names its outputs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "aitw/model/onnx_model.hpp"
#include "fuzz_common.hpp"
#include "onnx.pb.h"

using aitw::model::AdaptOptions;
using aitw::model::InputSize;
using aitw::model::ModelError;
using aitw::model::OnnxModel;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  aitw::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::optional<OnnxModel> model;
  try {
    model.emplace(OnnxModel::from_bytes(bytes, "fuzz.onnx"));
  } catch (const ModelError&) {
    return 0;
  }
  const auto& md = model->metadata();
  const auto& levels = model->levels();
  AITW_FUZZ_CHECK(!levels.empty());
  for (std::size_t i = 0; i < levels.size(); ++i) {
    AITW_FUZZ_CHECK(levels[i].stride >= 1 && md.max_stride % levels[i].stride == 0);
    if (i) AITW_FUZZ_CHECK(levels[i - 1].stride < levels[i].stride);
  }
  AITW_FUZZ_CHECK(md.max_stride == levels.back().stride);
  AITW_FUZZ_CHECK(model->head_layout().reg_max >= 1 && model->head_layout().num_classes >= 1);
  AITW_FUZZ_CHECK(md.class_names.size() == static_cast<std::size_t>(model->head_layout().num_classes));
  AITW_FUZZ_CHECK(model->sha256().size() == 64);

  const int ms = md.max_stride;
  const InputSize sizes[] = {md.native_input, {2 * ms, 3 * ms}};
  AdaptOptions stock_layers;
  stock_layers.custom_layers = false;
  AdaptOptions stock_head;
  stock_head.cut_head = false;
  stock_head.expand_stride_mul = true;
  const AdaptOptions options[] = {AdaptOptions{}, stock_layers, stock_head};
  for (const auto& in : sizes) {
    for (const auto& opt : options) {
      try {
        const auto g = model->adapt(in, opt);
        aitw::onnx::ModelProto back;
        AITW_FUZZ_CHECK(back.ParseFromString(g.onnx_bytes));
        AITW_FUZZ_CHECK(g.input == in);
        if (opt.cut_head) {
          AITW_FUZZ_CHECK(g.levels.size() == levels.size());
          AITW_FUZZ_CHECK(g.output_names.size() == levels.size());
          AITW_FUZZ_CHECK(back.graph().output_size() == static_cast<int>(levels.size()));
        }
        AITW_FUZZ_CHECK(!g.summary().empty());
      } catch (const ModelError&) {
      }
    }
  }
  return 0;
}
