// aitw's SiLU layer in place of OpenCV 4.6's Sigmoid and Mul pair.
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine fuse_silu(ox::GraphProto& g, const PassContext&) {
  GraphIndex idx(g);
  NodeEdits edits;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& sig = g.node(i);
    if (sig.op_type() != "Sigmoid" || sig.input_size() != 1 || sig.output_size() != 1) continue;
    auto cit = idx.consumers.find(sig.output(0));
    if (cit == idx.consumers.end() || cit->second.size() != 1) continue;
    const int mi = cit->second[0];
    const auto& mul = g.node(mi);
    if (mul.op_type() != "Mul" || mul.input_size() != 2 || mul.output_size() != 1) continue;
    const std::string& x = sig.input(0);
    if (!((mul.input(0) == x && mul.input(1) == sig.output(0)) ||
          (mul.input(1) == x && mul.input(0) == sig.output(0))))
      continue;
    ox::NodeProto silu;
    silu.set_op_type(kernel::kSiLUOpType);
    silu.set_name(mul.name() + "/aitw_silu");
    silu.add_input(x);
    silu.add_output(mul.output(0));
    edits.drop.insert(i);
    edits.replace[mi] = std::move(silu);
  }
  if (edits.replace.empty()) return std::nullopt;
  const std::size_t pairs = edits.replace.size();
  edits.apply(g);
  return std::to_string(pairs) + " Sigmoid*x pairs -> AitwSiLU (fusable into convolutions)";
}

}  // namespace aitw::model::detail
