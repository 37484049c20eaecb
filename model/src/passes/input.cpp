// Re-targeting the static input size: an export is traced at one size (640x640), and the few constants that
// depend on it are spatial Reshape shapes.
#include <algorithm>
#include <cmath>

#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine retarget_input(ox::GraphProto& g, const PassContext& c) {
  const InputSize input = c.input, native = c.native;
  auto in_vi = std::find_if(g.mutable_input()->begin(), g.mutable_input()->end(),
                            [&](const auto& v) { return v.name() == c.input_name; });
  if (in_vi == g.mutable_input()->end()) fail(c.label, "image input '" + c.input_name + "' not found");
  {
    auto* shape = in_vi->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->mutable_dim(0)->set_dim_value(1);
    shape->mutable_dim(2)->set_dim_value(input.height);
    shape->mutable_dim(3)->set_dim_value(input.width);
  }
  if (input == native) return "input " + size_str(input) + " (native size)";

  GraphIndex idx(g);
  const auto strides = propagate_strides(g, idx, c.input_name);
  int rewritten = 0;
  std::vector<ox::TensorProto> new_consts;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() == "Resize" && n.input_size() > 3 && !n.input(3).empty())
      fail(c.label, "cannot re-target input to " + size_str(input) + ": Resize node with fixed output sizes");
    if (n.op_type() != "Reshape" || n.input_size() != 2) continue;
    const auto* shape_const = idx.constant(n.input(1));
    auto st = strides.find(n.input(0));
    if (!shape_const || st == strides.end()) continue;
    const double s = st->second;
    const int64_t h0 = std::lround(native.height / s), w0 = std::lround(native.width / s);
    const int64_t h1 = std::lround(input.height / s), w1 = std::lround(input.width / s);
    auto shape = tensor_int64s(*shape_const);
    const auto before = shape;
    const std::size_t k = shape.size();
    if (k >= 2 && shape[k - 2] == h0 && shape[k - 1] == w0) {
      shape[k - 2] = h1;
      shape[k - 1] = w1;
    } else if (k >= 1 && shape[k - 1] == h0 * w0) {
      shape[k - 1] = h1 * w1;
    }
    if (shape == before) continue;
    ox::TensorProto t;
    t.set_name(n.input(1) + "/aitw_" + size_str(input));
    set_int64s(t, shape);
    n.set_input(1, t.name());
    new_consts.push_back(std::move(t));
    ++rewritten;
  }
  for (auto& t : new_consts) *g.add_initializer() = std::move(t);
  return "input re-targeted " + size_str(native) + " -> " + size_str(input) + " (" +
         std::to_string(rewritten) + " spatial Reshape constants rewritten)";
}

}  // namespace aitw::model::detail
