// aitw's nearest upscaling (kernel/dnn_layers.hpp) for the Resize nodes whose semantics it has: mode
// nearest, asymmetric coordinates, floor rounding (what Ultralytics exports for nn.Upsample).
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {
namespace {

std::string attr_string(const ox::NodeProto& n, const char* name, const std::string& fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : fallback;
}

}  // namespace

SummaryLine mark_resizes(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    // ONNX's defaults: nearest, half_pixel, round_prefer_floor.
    if (n.op_type() != "Resize" || find_attr(n, kernel::kResizeMark) ||
        attr_string(n, "mode", "nearest") != "nearest" ||
        attr_string(n, "coordinate_transformation_mode", "half_pixel") != "asymmetric" ||
        attr_string(n, "nearest_mode", "round_prefer_floor") != "floor")
      continue;
    auto* attr = n.add_attribute();
    attr->set_name(kernel::kResizeMark);
    attr->set_type(ox::AttributeProto::INT);
    attr->set_i(1);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " nearest Resize nodes -> aitw's integer upscale";
}

}  // namespace aitw::model::detail
