// aitw's layers for the neck's Resize and MaxPool nodes (kernel/dnn_layers.hpp), marked where the layers
// have exactly the node's semantics.
#include <algorithm>
#include <set>

#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {

bool nearest_floor_resize(const ox::NodeProto& n) {
  // ONNX's defaults: nearest, half_pixel, round_prefer_floor. Ultralytics exports nn.Upsample as
  // nearest / asymmetric / floor.
  return n.op_type() == "Resize" && attr_string(n, "mode", "nearest") == "nearest" &&
         attr_string(n, "coordinate_transformation_mode", "half_pixel") == "asymmetric" &&
         attr_string(n, "nearest_mode", "round_prefer_floor") == "floor";
}

int64_t same_size_max_pool(const ox::NodeProto& n) {
  if (n.op_type() != "MaxPool" || n.output_size() != 1) return 0;
  // SPPF's pools: k x k (k odd), stride 1, padding k / 2 on every side; no dilation, floor rounding.
  const auto k = attr_ints(n, "kernel_shape"), st = attr_ints(n, "strides"), p = attr_ints(n, "pads");
  const auto d = attr_ints(n, "dilations");
  const auto pad = attr_string(n, "auto_pad", "NOTSET");
  if (k.size() != 2 || k[0] != k[1] || k[0] % 2 == 0 || k[0] < 3 || k[0] > 15) return 0;
  if (!(st.empty() || (st.size() == 2 && st[0] == 1 && st[1] == 1))) return 0;
  if (p.size() != 4 || p[0] != k[0] / 2 || p[1] != p[0] || p[2] != p[0] || p[3] != p[0]) return 0;
  if (!(d.empty() || (d.size() == 2 && d[0] == 1 && d[1] == 1))) return 0;
  if ((pad != "NOTSET" && !pad.empty()) || attr_int(n, "ceil_mode", 0) != 0 ||
      attr_int(n, "storage_order", 0))
    return 0;
  return k[0];
}

SummaryLine mark_resizes(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    if (!nearest_floor_resize(n) || find_attr(n, kernel::kResizeMark)) continue;
    set_int_attr(n, kernel::kResizeMark, 1);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " nearest Resize nodes -> aitw's integer upscale";
}

SummaryLine mark_max_pools(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    const int64_t k = same_size_max_pool(n);
    if (k == 0 || find_attr(n, kernel::kMaxPoolMark)) continue;
    set_int_attr(n, kernel::kMaxPoolMark, k);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " same-size MaxPool nodes -> aitw's separable max";
}

SummaryLine chain_max_pools(ox::GraphProto& g, const PassContext&) {
  GraphIndex idx(g);
  // A pool's window if aitw's pooling runs it (marked, and what the mark claims: a mark in the model as
  // loaded is not trusted), else 0.
  const auto pooled = [](const ox::NodeProto& n) {
    const int64_t k = same_size_max_pool(n);
    return k && attr_int(n, kernel::kMaxPoolMark, 0) == k ? k : 0;
  };
  // The marked pool of window k that reads `tensor`, if exactly one does.
  const auto next_pool = [&](const std::string& tensor, int64_t k) {
    int found = -1, count = 0;
    const auto it = idx.consumers.find(tensor);
    for (int c : it == idx.consumers.end() ? std::vector<int>{} : it->second) {
      const auto& n = g.node(c);
      if (pooled(n) == k && n.input_size() == 1) found = c, ++count;
    }
    return count == 1 ? found : -1;
  };
  NodeEdits edits;
  std::set<int> taken;
  int chains = 0, pools = 0;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& first = g.node(i);
    const int64_t k = pooled(first);
    if (k == 0 || taken.count(i) || first.input_size() != 1) continue;
    // A chain starts at a pool whose input no pool of the same window produced.
    if (const auto p = idx.producer.find(first.input(0)); p != idx.producer.end()) {
      const auto& prev = g.node(p->second);
      if (pooled(prev) == k) continue;
    }
    std::vector<int> chain{i};
    for (int n = next_pool(first.output(0), k);
         n >= 0 && chain.size() < 8 && std::find(chain.begin(), chain.end(), n) == chain.end();
         n = next_pool(g.node(n).output(0), k))
      chain.push_back(n);
    if (chain.size() < 2) continue;
    ox::NodeProto node;
    node.set_op_type(kernel::kMaxPoolChainOpType);
    node.set_name((first.name().empty() ? first.output(0) : first.name()) + "_chain");
    node.add_input(first.input(0));
    for (int c : chain) {
      node.add_output(g.node(c).output(0));
      taken.insert(c);
      if (c != i) edits.drop.insert(c);
    }
    set_int_attr(node, kernel::kMaxPoolMark, k);
    set_int_attr(node, "outputs", static_cast<int64_t>(chain.size()));
    edits.replace[i] = std::move(node);
    ++chains;
    pools += static_cast<int>(chain.size());
  }
  if (chains == 0) return std::nullopt;
  edits.apply(g);
  return std::to_string(pools) + " of them in " + std::to_string(chains) +
         " chain(s) -> one AitwMaxPoolChain each";
}

}  // namespace aitw::model::detail
