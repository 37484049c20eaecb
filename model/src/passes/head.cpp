// Passes on the Detect head: cut it at the raw level outputs (what aitw runs), or keep the stock head and
// make it runnable (the baseline).
#include <sstream>

#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine cut_head(ox::GraphProto& g, const PassContext& c) {
  g.clear_output();
  std::ostringstream cut;
  cut << "head cut at " << c.levels.size() << " raw level outputs [1," << c.layout.channels()
      << ",H/s,W/s] (s=";
  for (std::size_t i = 0; i < c.levels.size(); ++i) {
    const auto& lv = c.levels[i];
    set_value_info_4d(*g.add_output(), lv.tensor,
                      {1, c.layout.channels(), c.input.height / lv.stride, c.input.width / lv.stride});
    cut << (i ? "," : "") << lv.stride;
  }
  cut << "; reg_max " << c.layout.reg_max << ", " << c.layout.num_classes << " classes)";
  return cut.str();
}

SummaryLine expand_stride_mul(ox::GraphProto& g, const PassContext& c) {
  GraphIndex idx(g);
  int64_t anchors = 0;
  for (const auto& lv : c.levels) anchors += (c.input.height / lv.stride) * (c.input.width / lv.stride);
  // One line per constant expanded, joined as the summary joins lines (a stock head has one).
  std::string lines;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() != "Mul" || n.input_size() != 2) continue;
    for (int k = 0; k < 2; ++k) {
      const auto* s = idx.constant(n.input(k));
      if (!s || element_count(*s) != anchors || s->dims_size() > 2) continue;
      const auto v = tensor_floats(*s);
      if (static_cast<int64_t>(v.size()) != anchors) continue;
      ox::TensorProto t;
      t.set_name(n.input(k) + "/aitw_expanded");
      t.set_data_type(ox::TensorProto::FLOAT);
      for (int64_t d : {int64_t{1}, int64_t{4}, anchors}) t.add_dims(d);
      std::string raw;
      for (int r = 0; r < 4; ++r)
        raw.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      t.set_raw_data(std::move(raw));
      n.set_input(k, t.name());
      *g.add_initializer() = std::move(t);
      lines += (lines.empty() ? "" : "; ") + std::string("stock head: stride constant expanded to [1,4,") +
               std::to_string(anchors) + "]";
    }
  }
  if (lines.empty()) return std::nullopt;
  return lines;
}

}  // namespace aitw::model::detail
