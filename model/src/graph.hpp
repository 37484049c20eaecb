#pragma once
// What the loader (onnx_model.cpp) and the adapter's passes (passes/) share to read and edit an ONNX graph:
// attribute and constant readers, the graph index, stride propagation, liveness, the attention-scale
// matcher and ordered node edits. Private to model/ and its tests.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "aitw/kernel/letterbox.hpp"
#include "onnx.pb.h"

namespace aitw::model::detail {

namespace ox = aitw::onnx;
using kernel::InputSize;

// Throws ModelError "model 'label': what".
[[noreturn]] void fail(const std::string& label, const std::string& what);
std::string size_str(InputSize s);  // "HxW"

const ox::AttributeProto* find_attr(const ox::NodeProto& n, const char* name);
int64_t attr_int(const ox::NodeProto& n, const char* name, int64_t fallback);
std::vector<int64_t> attr_ints(const ox::NodeProto& n, const char* name);  // empty when absent
std::string attr_string(const ox::NodeProto& n, const char* name, const std::string& fallback);
void set_int_attr(ox::NodeProto& n, const char* name, int64_t v);  // appends it
// A constant's values as int64 (INT64 or INT32 data) or float (FLOAT data); empty for other types.
std::vector<int64_t> tensor_int64s(const ox::TensorProto& t);
std::vector<float> tensor_floats(const ox::TensorProto& t);
int64_t element_count(const ox::TensorProto& t);  // product of the dims, bounded by the load-time check

// Replaces t's data and shape with the 1-D INT64 `v` (raw data).
void set_int64s(ox::TensorProto& t, const std::vector<int64_t>& v);
void set_value_info_4d(ox::ValueInfoProto& vi, const std::string& name, const std::vector<int64_t>& dims);

// Index of the graph: constants (initializers and Constant nodes), producers and consumers of tensors.
// Node numbers are positions in g.node(): rebuild the index after any pass that edits the node list.
struct GraphIndex {
  std::unordered_map<std::string, const ox::TensorProto*> constants;
  std::unordered_map<std::string, int> producer;
  std::unordered_map<std::string, std::vector<int>> consumers;
  std::unordered_set<std::string> graph_inputs;

  explicit GraphIndex(const ox::GraphProto& g);
  const ox::TensorProto* constant(const std::string& name) const {
    auto it = constants.find(name);
    return it == constants.end() ? nullptr : it->second;
  }
  bool is_constant(const std::string& name) const { return constants.count(name) != 0; }
};

// Spatial stride of every activation relative to the graph input, propagated through the ops that change
// resolution. This is what lets the adapter find pyramid levels and spatial shape constants without
// relying on node names, which differ between Ultralytics versions and converters.
std::unordered_map<std::string, double> propagate_strides(const ox::GraphProto& g, const GraphIndex& idx,
                                                          const std::string& input_name);

// Tensors from which some graph output can be reached.
std::unordered_set<std::string> tensors_reaching_outputs(const ox::GraphProto& g, const GraphIndex& idx);

struct AttentionScale {
  int matmul = -1, mul = -1;
  std::string scale_tensor;
};

// YOLO11's Attention: Softmax((q^T k) * scale). Found as a MatMul of two activations whose only consumer
// is a Mul by a one-element constant.
std::vector<AttentionScale> find_attention_scales(const ox::GraphProto& g, const GraphIndex& idx);

// Edits to a graph's node list, applied in one ordered rebuild: dropped nodes vanish, a replaced node
// takes the original's place (so topological order holds), inserted nodes come just before theirs, and
// renamed tensors are rewritten in every remaining input.
struct NodeEdits {
  std::set<int> drop;
  std::map<int, ox::NodeProto> replace, insert_before;
  std::unordered_map<std::string, std::string> rename_inputs;

  void apply(ox::GraphProto& g);
};

}  // namespace aitw::model::detail
