// aitw's convolution (kernel/conv_layer.hpp) for every Conv node, and the residual Adds of the bottlenecks
// folded into the convolution that produces one of their operands.
#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {
namespace {

// The shape aitw's kernels would run for a 2-D Conv node with constant weights, and whether they run it
// (what create_convolution_layer decides at load, from the same attributes): a fused Add is only safe on a
// convolution that is certain to be aitw's.
bool aitw_runs(const ox::NodeProto& conv, const GraphIndex& idx) {
  if (conv.input_size() < 2 || conv.input_size() > 3 || !find_attr(conv, kernel::kConvolutionMark) ||
      find_attr(conv, kernel::kConvResidualMark))
    return false;
  const auto* w = idx.constant(conv.input(1));
  if (!w || w->dims_size() != 4 || w->data_type() != ox::TensorProto::FLOAT) return false;
  if (conv.input_size() == 3 && !idx.is_constant(conv.input(2))) return false;
  if (const auto* ap = find_attr(conv, "auto_pad"); ap && !ap->s().empty() && ap->s() != "NOTSET")
    return false;
  for (int64_t d : attr_ints(conv, "dilations"))
    if (d != 1) return false;
  const auto k = attr_ints(conv, "kernel_shape"), st = attr_ints(conv, "strides"),
             p = attr_ints(conv, "pads");
  if ((!k.empty() && k.size() != 2) || (!st.empty() && st.size() != 2) || (!p.empty() && p.size() != 4))
    return false;
  kernel::ConvShape s;
  s.groups = static_cast<int>(attr_int(conv, "group", 1));
  s.out_channels = static_cast<int>(w->dims(0));
  s.in_channels = static_cast<int>(w->dims(1)) * s.groups;
  s.kernel_h = static_cast<int>(w->dims(2));
  s.kernel_w = static_cast<int>(w->dims(3));
  if (!k.empty() && (k[0] != s.kernel_h || k[1] != s.kernel_w)) return false;
  if (!st.empty()) {
    s.stride_h = static_cast<int>(st[0]);
    s.stride_w = static_cast<int>(st[1]);
  }
  if (!p.empty()) {
    s.pad_top = static_cast<int>(p[0]);
    s.pad_left = static_cast<int>(p[1]);
    s.pad_bottom = static_cast<int>(p[2]);
    s.pad_right = static_cast<int>(p[3]);
  }
  return kernel::conv_unsupported_reason(s).empty();
}

}  // namespace

SummaryLine mark_convolutions(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() != "Conv") continue;
    set_int_attr(n, kernel::kConvolutionMark, 1);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " Conv nodes -> aitw Convolution (" + kernel::convolution_kernels_in_use() +
         ")";
}

SummaryLine fuse_residual_adds(ox::GraphProto& g, const PassContext&) {
  if (!kernel::convolution_fusion_enabled()) return std::nullopt;
  GraphIndex idx(g);
  NodeEdits edits;
  std::unordered_set<std::string> outputs;
  for (const auto& o : g.output()) outputs.insert(o.name());
  // The fused node no longer produces `t`: nothing else may read it.
  const auto only_consumer = [&](const std::string& t, int node) {
    const auto it = idx.consumers.find(t);
    return !outputs.count(t) && it != idx.consumers.end() && it->second.size() == 1 && it->second[0] == node;
  };
  for (int ai = 0; ai < g.node_size(); ++ai) {
    const auto& add = g.node(ai);
    if (add.op_type() != "Add" || add.input_size() != 2 || add.output_size() != 1) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& y = add.input(side);
      const std::string& skip = add.input(1 - side);
      if (y == skip || idx.is_constant(skip)) continue;
      const auto py = idx.producer.find(y);
      if (py == idx.producer.end() || !only_consumer(y, ai)) continue;
      int ci = py->second, silu = -1;
      if (g.node(ci).op_type() == kernel::kSiLUOpType) {
        silu = ci;
        const auto pc = idx.producer.find(g.node(silu).input(0));
        if (pc == idx.producer.end() || !only_consumer(g.node(silu).input(0), silu)) continue;
        ci = pc->second;
      }
      const auto& conv = g.node(ci);
      if (conv.op_type() != "Conv" || conv.output_size() != 1 || edits.replace.count(ci) ||
          !aitw_runs(conv, idx))
        continue;
      // The Add's work moves to the convolution's place in the node order: the skip tensor must exist there.
      const auto ps = idx.producer.find(skip);
      if (ps != idx.producer.end() ? ps->second >= ci : !idx.graph_inputs.count(skip)) continue;
      ox::NodeProto fused = conv;
      fused.add_input(skip);
      fused.set_output(0, add.output(0));
      set_int_attr(fused, kernel::kConvResidualMark, 1);
      if (silu >= 0) {
        auto* a = fused.add_attribute();
        a->set_name(kernel::kConvActivationAttr);
        a->set_type(ox::AttributeProto::STRING);
        a->set_s("silu");
        edits.drop.insert(silu);
      }
      edits.drop.insert(ai);
      edits.replace[ci] = std::move(fused);
      break;
    }
  }
  if (edits.replace.empty()) return std::nullopt;
  const std::size_t fused = edits.replace.size();
  edits.apply(g);
  return std::to_string(fused) + " residual Adds -> their convolution's output loop";
}

}  // namespace aitw::model::detail
