// Passes on YOLO11's attention blocks: Softmax((q^T k) * scale) v.
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine fuse_attention(ox::GraphProto& g, const PassContext&) {
  GraphIndex idx(g);
  auto only_consumer = [&](const std::string& t) -> int {
    auto it = idx.consumers.find(t);
    return it != idx.consumers.end() && it->second.size() == 1 ? it->second[0] : -1;
  };
  auto is_swap_last_two = [&](const ox::NodeProto& n) {
    const auto* perm = find_attr(n, "perm");
    return n.op_type() == "Transpose" && n.input_size() == 1 && n.output_size() == 1 && perm &&
           perm->ints_size() == 4 && perm->ints(0) == 0 && perm->ints(1) == 1 && perm->ints(2) == 3 &&
           perm->ints(3) == 2;
  };
  NodeEdits edits;
  for (const auto& a : find_attention_scales(g, idx)) {
    const auto& mm1 = g.node(a.matmul);
    auto qt = idx.producer.find(mm1.input(0));
    if (qt == idx.producer.end() || !is_swap_last_two(g.node(qt->second)) ||
        only_consumer(mm1.input(0)) != a.matmul)
      continue;
    const int sm = only_consumer(g.node(a.mul).output(0));
    if (sm < 0 || g.node(sm).op_type() != "Softmax" || g.node(sm).output_size() != 1) continue;
    const int64_t axis = attr_int(g.node(sm), "axis", -1);
    if (axis != -1 && axis != 3) continue;
    const int tr = only_consumer(g.node(sm).output(0));
    if (tr < 0 || !is_swap_last_two(g.node(tr))) continue;
    const int mm2 = only_consumer(g.node(tr).output(0));
    // Found by fuzz_onnx: node input/output lists are unchecked data (a MatMul with one input read past
    // its end here).
    if (mm2 < 0 || g.node(mm2).op_type() != "MatMul" || g.node(mm2).input_size() != 2 ||
        g.node(mm2).output_size() != 1 || g.node(mm2).input(1) != g.node(tr).output(0))
      continue;
    const auto* sc = idx.constant(a.scale_tensor);
    const auto scale = sc ? tensor_floats(*sc) : std::vector<float>{};
    if (scale.size() != 1) continue;
    ox::NodeProto att;
    att.set_op_type(kernel::kAttentionOpType);
    att.set_name(g.node(mm2).name() + "/aitw_attention");
    att.add_input(g.node(qt->second).input(0));  // q
    att.add_input(mm1.input(1));                 // k
    att.add_input(g.node(mm2).input(0));         // v
    att.add_output(g.node(mm2).output(0));
    auto* attr = att.add_attribute();
    attr->set_name("scale");
    attr->set_type(ox::AttributeProto::FLOAT);
    attr->set_f(scale[0]);
    for (int i : {qt->second, a.matmul, a.mul, sm, tr}) edits.drop.insert(i);
    edits.replace[mm2] = std::move(att);
  }
  if (edits.replace.empty()) return std::nullopt;
  const std::size_t blocks = edits.replace.size();
  edits.apply(g);
  return std::to_string(blocks) + " attention block(s) -> AitwAttention";
}

SummaryLine prescale_attention(ox::GraphProto& g, const PassContext&) {
  GraphIndex idx(g);
  auto found = find_attention_scales(g, idx);
  if (found.empty()) return std::nullopt;
  NodeEdits edits;
  for (const auto& a : found) {
    auto& mm = *g.mutable_node(a.matmul);
    const auto& mul = g.node(a.mul);
    ox::NodeProto scale;
    scale.set_op_type("Mul");
    scale.set_name(mm.name() + "/aitw_prescale");
    scale.add_input(mm.input(0));
    scale.add_input(a.scale_tensor);
    scale.add_output(mm.input(0) + "/aitw_prescaled");
    mm.set_input(0, scale.output(0));
    edits.rename_inputs[mul.output(0)] = mm.output(0);  // the Mul's consumers now read the MatMul
    edits.drop.insert(a.mul);
    edits.insert_before[a.matmul] = std::move(scale);
  }
  edits.apply(g);
  return "attention scale moved before q^T*k MatMul in " + std::to_string(found.size()) +
         " block(s) (OpenCV 4.6 fusion bug)";
}

}  // namespace aitw::model::detail
