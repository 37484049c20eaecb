// aitw's layers for the neck's Resize and MaxPool nodes (kernel/dnn_layers.hpp), marked where the layers
// have exactly the node's semantics.
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine mark_resizes(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    // ONNX's defaults: nearest, half_pixel, round_prefer_floor. Ultralytics exports nn.Upsample as
    // nearest / asymmetric / floor.
    if (n.op_type() != "Resize" || find_attr(n, kernel::kResizeMark) ||
        attr_string(n, "mode", "nearest") != "nearest" ||
        attr_string(n, "coordinate_transformation_mode", "half_pixel") != "asymmetric" ||
        attr_string(n, "nearest_mode", "round_prefer_floor") != "floor")
      continue;
    set_int_attr(n, kernel::kResizeMark, 1);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " nearest Resize nodes -> aitw's integer upscale";
}

SummaryLine mark_max_pools(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() != "MaxPool" || n.output_size() != 1 || find_attr(n, kernel::kMaxPoolMark)) continue;
    // SPPF's pools: k x k (k odd), stride 1, padding k / 2 on every side; no dilation, floor rounding.
    const auto k = attr_ints(n, "kernel_shape"), st = attr_ints(n, "strides"), p = attr_ints(n, "pads");
    const auto d = attr_ints(n, "dilations");
    const auto pad = attr_string(n, "auto_pad", "NOTSET");
    if (k.size() != 2 || k[0] != k[1] || k[0] % 2 == 0 || k[0] < 3 || k[0] > 15) continue;
    if (!(st.empty() || (st.size() == 2 && st[0] == 1 && st[1] == 1))) continue;
    if (p.size() != 4 || p[0] != k[0] / 2 || p[1] != p[0] || p[2] != p[0] || p[3] != p[0]) continue;
    if (!(d.empty() || (d.size() == 2 && d[0] == 1 && d[1] == 1))) continue;
    if ((pad != "NOTSET" && !pad.empty()) || attr_int(n, "ceil_mode", 0) != 0 ||
        attr_int(n, "storage_order", 0))
      continue;
    set_int_attr(n, kernel::kMaxPoolMark, k[0]);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " same-size MaxPool nodes -> aitw's separable max";
}

}  // namespace aitw::model::detail
