#include "graph.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "aitw/model/error.hpp"

namespace aitw::model::detail {

void fail(const std::string& label, const std::string& what) {
  throw ModelError("model '" + label + "': " + what);
}

std::string size_str(InputSize s) {
  return std::to_string(s.height) + "x" + std::to_string(s.width);
}

const ox::AttributeProto* find_attr(const ox::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t attr_int(const ox::NodeProto& n, const char* name, int64_t fallback) {
  const auto* a = find_attr(n, name);
  return a && a->has_i() ? a->i() : fallback;
}

std::vector<int64_t> attr_ints(const ox::NodeProto& n, const char* name) {
  const auto* a = find_attr(n, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

std::string attr_string(const ox::NodeProto& n, const char* name, const std::string& fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : fallback;
}

void set_int_attr(ox::NodeProto& n, const char* name, int64_t v) {
  auto* attr = n.add_attribute();
  attr->set_name(name);
  attr->set_type(ox::AttributeProto::INT);
  attr->set_i(v);
}

std::vector<int64_t> tensor_int64s(const ox::TensorProto& t) {
  std::vector<int64_t> v;
  if (t.data_type() == ox::TensorProto::INT64) {
    if (t.has_raw_data()) {
      v.resize(t.raw_data().size() / sizeof(int64_t));
      std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(int64_t));
    } else {
      v.assign(t.int64_data().begin(), t.int64_data().end());
    }
  } else if (t.data_type() == ox::TensorProto::INT32) {
    if (t.has_raw_data()) {
      std::vector<int32_t> w(t.raw_data().size() / sizeof(int32_t));
      std::memcpy(w.data(), t.raw_data().data(), w.size() * sizeof(int32_t));
      v.assign(w.begin(), w.end());
    } else {
      v.assign(t.int32_data().begin(), t.int32_data().end());
    }
  }
  return v;
}

std::vector<float> tensor_floats(const ox::TensorProto& t) {
  std::vector<float> v;
  if (t.data_type() != ox::TensorProto::FLOAT) return v;
  if (t.has_raw_data()) {
    v.resize(t.raw_data().size() / sizeof(float));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
  } else {
    v.assign(t.float_data().begin(), t.float_data().end());
  }
  return v;
}

int64_t element_count(const ox::TensorProto& t) {
  int64_t n = 1;
  for (auto d : t.dims()) n *= d;  // bounded: every constant passed check_tensor at load
  return n;
}

void set_int64s(ox::TensorProto& t, const std::vector<int64_t>& v) {
  t.clear_int64_data();
  t.clear_int32_data();
  t.set_data_type(ox::TensorProto::INT64);
  t.clear_dims();
  t.add_dims(static_cast<int64_t>(v.size()));
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t)));
}

void set_value_info_4d(ox::ValueInfoProto& vi, const std::string& name, const std::vector<int64_t>& dims) {
  vi.Clear();
  vi.set_name(name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(ox::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  for (auto d : dims) shape->add_dim()->set_dim_value(d);
}

GraphIndex::GraphIndex(const ox::GraphProto& g) {
  for (const auto& t : g.initializer()) constants[t.name()] = &t;
  for (const auto& in : g.input()) graph_inputs.insert(in.name());
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    for (const auto& o : n.output()) producer[o] = i;
    for (const auto& in : n.input()) consumers[in].push_back(i);
    if (n.op_type() == "Constant" && n.output_size() == 1)
      if (const auto* a = find_attr(n, "value"); a && a->has_t()) constants[n.output(0)] = &a->t();
  }
}

std::unordered_map<std::string, double> propagate_strides(const ox::GraphProto& g, const GraphIndex& idx,
                                                          const std::string& input_name) {
  std::unordered_map<std::string, double> stride;
  stride[input_name] = 1.0;
  for (const auto& n : g.node()) {
    double s = 0.0;
    bool invalid = false;
    for (const auto& in : n.input()) {
      auto it = stride.find(in);
      if (it == stride.end()) continue;
      if (it->second < 0) invalid = true;
      s = std::max(s, it->second);
    }
    if (s == 0.0 && !invalid) continue;  // constant subgraph
    if (invalid) s = -1.0;
    const std::string& op = n.op_type();
    // Strides and scales outside any real network's range mark the result invalid (-1) rather than
    // feed a division later; find_head ignores such tensors.
    if (op == "Conv" || op == "MaxPool" || op == "AveragePool") {
      if (const auto* a = find_attr(n, "strides"); a && a->ints_size() > 0) {
        const int64_t st = a->ints(0);
        s = st >= 1 && st <= 64 ? s * static_cast<double>(st) : -1.0;
      }
    } else if (op == "Resize" || op == "Upsample") {
      const int at = op == "Resize" ? 2 : 1;
      const std::string scales_name = n.input_size() > at ? n.input(at) : "";
      if (const auto* t = idx.constant(scales_name)) {
        auto sc = tensor_floats(*t);
        if (sc.size() == 4) s = sc[2] >= 1.f / 64 && sc[2] <= 64.f ? s / static_cast<double>(sc[2]) : -1.0;
      }
    }
    if (s < 0) {
      for (const auto& o : n.output()) stride[o] = -1.0;
      continue;
    }
    for (const auto& o : n.output()) stride[o] = s;
  }
  return stride;
}

std::unordered_set<std::string> tensors_reaching_outputs(const ox::GraphProto& g, const GraphIndex& idx) {
  std::unordered_set<std::string> live;
  std::vector<std::string> stack;
  for (const auto& o : g.output()) stack.push_back(o.name());
  while (!stack.empty()) {
    std::string t = stack.back();
    stack.pop_back();
    if (!live.insert(t).second) continue;
    auto it = idx.producer.find(t);
    if (it == idx.producer.end()) continue;
    for (const auto& in : g.node(it->second).input()) stack.push_back(in);
  }
  return live;
}

std::vector<AttentionScale> find_attention_scales(const ox::GraphProto& g, const GraphIndex& idx) {
  std::vector<AttentionScale> found;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (n.op_type() != "MatMul" || n.input_size() != 2 || n.output_size() != 1) continue;
    if (idx.is_constant(n.input(0)) || idx.is_constant(n.input(1))) continue;
    auto cit = idx.consumers.find(n.output(0));
    if (cit == idx.consumers.end() || cit->second.size() != 1) continue;
    const int mi = cit->second[0];
    const auto& m = g.node(mi);
    if (m.op_type() != "Mul" || m.input_size() != 2 || m.output_size() != 1) continue;
    const std::string& other = m.input(0) == n.output(0) ? m.input(1) : m.input(0);
    const auto* c = idx.constant(other);
    if (!c || element_count(*c) != 1) continue;
    found.push_back({i, mi, other});
  }
  return found;
}

void NodeEdits::apply(ox::GraphProto& g) {
  google::protobuf::RepeatedPtrField<ox::NodeProto> nodes;
  for (int i = 0; i < g.node_size(); ++i) {
    if (drop.count(i)) continue;
    if (auto it = insert_before.find(i); it != insert_before.end()) *nodes.Add() = std::move(it->second);
    auto& n = *nodes.Add();
    auto r = replace.find(i);
    n = r != replace.end() ? std::move(r->second) : std::move(*g.mutable_node(i));
    for (auto& in : *n.mutable_input())
      if (auto it = rename_inputs.find(in); it != rename_inputs.end()) in = it->second;
  }
  g.mutable_node()->Swap(&nodes);
}

}  // namespace aitw::model::detail
