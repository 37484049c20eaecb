// Passes that only remove: what no output needs, and what nothing reads.
#include <unordered_set>

#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine prune_unreachable_nodes(ox::GraphProto& g, const PassContext&) {
  GraphIndex idx(g);
  const auto live = tensors_reaching_outputs(g, idx);
  google::protobuf::RepeatedPtrField<ox::NodeProto> kept;
  for (auto& n : *g.mutable_node()) {
    bool needed = false;
    for (const auto& o : n.output()) needed |= live.count(o) > 0;
    if (needed) kept.Add(std::move(n));
  }
  g.mutable_node()->Swap(&kept);
  g.clear_value_info();
  return std::nullopt;
}

SummaryLine prune_unused_initializers(ox::GraphProto& g, const PassContext& c) {
  std::unordered_set<std::string> used;
  for (const auto& n : g.node())
    for (const auto& in : n.input()) used.insert(in);
  google::protobuf::RepeatedPtrField<ox::TensorProto> kept;
  for (auto& t : *g.mutable_initializer())
    if (used.count(t.name())) kept.Add(std::move(t));
  g.mutable_initializer()->Swap(&kept);
  google::protobuf::RepeatedPtrField<ox::ValueInfoProto> inputs;
  for (auto& v : *g.mutable_input())
    if (v.name() == c.input_name || used.count(v.name())) inputs.Add(std::move(v));
  g.mutable_input()->Swap(&inputs);
  return std::nullopt;
}

}  // namespace aitw::model::detail
