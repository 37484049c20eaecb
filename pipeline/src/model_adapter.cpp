#include "aitw/pipeline/model_adapter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "aitw/base/sha256.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "onnx.pb.h"

namespace aitw::pipeline {
namespace {

namespace ox = aitw::onnx;

std::string quoted(const std::string& label) {
  return "model '" + label + "'";
}

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw ModelError(quoted(label) + ": " + what);
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

// Elements a tensor may hold: far above any detector's largest weight, low enough that byte counts
// cannot overflow and a hostile file cannot make OpenCV allocate gigabytes.
constexpr int64_t kMaxTensorElements = int64_t{1} << 28;

// Far above any detection dataset's classes (LVIS has 1203, Objects365 365).
constexpr int kMaxClasses = 100000;

int64_t element_count(const ox::TensorProto& t) {
  int64_t n = 1;
  for (auto d : t.dims()) n *= d;  // bounded: every constant passed check_tensor at load
  return n;
}

std::size_t element_bytes(int32_t type) {
  switch (type) {
    case ox::TensorProto::FLOAT:
    case ox::TensorProto::INT32:
    case ox::TensorProto::UINT32:
      return 4;
    case ox::TensorProto::UINT8:
    case ox::TensorProto::INT8:
    case ox::TensorProto::BOOL:
      return 1;
    case ox::TensorProto::UINT16:
    case ox::TensorProto::INT16:
    case ox::TensorProto::FLOAT16:
      return 2;
    case ox::TensorProto::INT64:
    case ox::TensorProto::DOUBLE:
    case ox::TensorProto::UINT64:
      return 8;
    default:
      return 0;
  }
}

// OpenCV's importer reads as many bytes as a tensor's dims say, whatever its data holds: a constant whose
// data does not match its shape would make it read out of bounds. Checked for every constant at load.
void check_tensor(const ox::TensorProto& t, const std::string& label) {
  const std::string what = "constant '" + t.name() + "'";
  int64_t n = 1;
  for (auto d : t.dims()) {
    if (d < 0 || (d > 0 && n > kMaxTensorElements / d)) fail(label, what + " has invalid or oversized dims");
    n *= d;
  }
  if (n > kMaxTensorElements) fail(label, what + " has more than 2^28 elements");
  const int32_t type = t.data_type();
  if (t.has_raw_data()) {
    const std::size_t eb = element_bytes(type);
    if (eb == 0) fail(label, what + " has unsupported data type " + std::to_string(type));
    if (t.raw_data().size() != static_cast<std::size_t>(n) * eb)
      fail(label, what + " holds " + std::to_string(t.raw_data().size()) + " bytes, its shape needs " +
                      std::to_string(static_cast<std::size_t>(n) * eb) + " (truncated or corrupt?)");
    return;
  }
  int64_t have = -1;
  switch (type) {
    case ox::TensorProto::FLOAT:
      have = t.float_data_size();
      break;
    case ox::TensorProto::INT64:
      have = t.int64_data_size();
      break;
    case ox::TensorProto::DOUBLE:
      have = t.double_data_size();
      break;
    case ox::TensorProto::UINT32:
    case ox::TensorProto::UINT64:
      have = t.uint64_data_size();
      break;
    case ox::TensorProto::STRING:
      have = t.string_data_size();
      break;
    default:
      if (element_bytes(type) != 0) have = t.int32_data_size();
  }
  if (have < 0) fail(label, what + " has unsupported data type " + std::to_string(type));
  if (have != n)
    fail(label, what + " holds " + std::to_string(have) + " values, its shape needs " + std::to_string(n) +
                    (have == 0 ? " (external data is not supported)" : ""));
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

// Index of the graph: constants (initializers and Constant nodes), producers and consumers of tensors.
struct GraphIndex {
  std::unordered_map<std::string, const ox::TensorProto*> constants;
  std::unordered_map<std::string, int> producer;
  std::unordered_map<std::string, std::vector<int>> consumers;
  std::unordered_set<std::string> graph_inputs;

  explicit GraphIndex(const ox::GraphProto& g) {
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

struct HeadCandidate {
  std::string tensor;
  int box_channels = 0, class_channels = 0;
  int stride = 0;
};

int conv_out_channels(const ox::GraphProto& g, const GraphIndex& idx, const std::string& tensor) {
  auto it = idx.producer.find(tensor);
  if (it == idx.producer.end()) return 0;
  const auto& n = g.node(it->second);
  if (n.op_type() != "Conv" || n.input_size() < 2) return 0;
  const auto* w = idx.constant(n.input(1));
  // A weight with no elements (a zero dim) is no convolution: its first dim could claim any channel count.
  if (!w || w->dims_size() != 4 || element_count(*w) == 0) return 0;
  return static_cast<int>(w->dims(0));
}

// Tensors from which some graph output can be reached.
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

// Ultralytics' Detect head ends every level with torch.cat((cv2[i](x), cv3[i](x)), 1): a Concat on the
// channel axis of two raw Conv outputs (box branch with 4*reg_max channels, class branch with nc). The
// backbone never concatenates raw Conv outputs (its convs end in SiLU), so the pattern is distinctive.
std::vector<HeadCandidate> find_head(const ox::GraphProto& g, const GraphIndex& idx,
                                     const std::unordered_map<std::string, double>& strides) {
  const auto live = tensors_reaching_outputs(g, idx);
  std::map<std::pair<int, int>, std::vector<HeadCandidate>> groups;
  for (const auto& n : g.node()) {
    if (n.op_type() != "Concat" || n.input_size() != 2 || n.output_size() != 1) continue;
    const int64_t axis = attr_int(n, "axis", 0);
    if (axis != 1 && axis != -3) continue;
    if (!live.count(n.output(0))) continue;
    const int box = conv_out_channels(g, idx, n.input(0));
    const int cls = conv_out_channels(g, idx, n.input(1));
    if (box <= 0 || cls <= 0 || box % 4 != 0) continue;
    auto st = strides.find(n.output(0));
    if (st == strides.end() || !std::isfinite(st->second) || st->second < 1.0 || st->second > 1024.0 ||
        std::abs(st->second - std::round(st->second)) > 1e-6)
      continue;
    groups[{box, cls}].push_back({n.output(0), box, cls, static_cast<int>(std::lround(st->second))});
  }
  std::vector<HeadCandidate> best;
  for (auto& [key, v] : groups)
    if (v.size() > best.size()) best = v;
  std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.stride < b.stride; });
  return best;
}

struct AttentionScale {
  int matmul = -1, mul = -1;
  std::string scale_tensor;
};

// YOLO11's Attention: Softmax((q^T k) * scale). Found as a MatMul of two activations whose only consumer
// is a Mul by a one-element constant.
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

// Edits to a graph's node list, applied in one ordered rebuild: dropped nodes vanish, a replaced node
// takes the original's place (so topological order holds), inserted nodes come just before theirs, and
// renamed tensors are rewritten in every remaining input.
struct NodeEdits {
  std::set<int> drop;
  std::map<int, ox::NodeProto> replace, insert_before;
  std::unordered_map<std::string, std::string> rename_inputs;

  void apply(ox::GraphProto& g) {
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
};

std::vector<int64_t> input_dims(const ox::ValueInfoProto& vi) {
  std::vector<int64_t> d;
  if (!vi.has_type() || !vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) return d;
  for (const auto& dim : vi.type().tensor_type().shape().dim())
    d.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  return d;
}

std::string size_str(InputSize s) {
  return std::to_string(s.height) + "x" + std::to_string(s.width);
}

}  // namespace

struct OnnxModel::Impl {
  ox::ModelProto model;
  std::string input_name;
};

OnnxModel::OnnxModel(OnnxModel&&) noexcept = default;
OnnxModel& OnnxModel::operator=(OnnxModel&&) noexcept = default;
OnnxModel::~OnnxModel() = default;

std::vector<std::string> parse_names_dict(const std::string& text) {
  std::map<int, std::string> names;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    while (i < n && !std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    int id = 0;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
      id = std::min(id * 10 + (text[i++] - '0'), 1'000'000);  // no dataset has a million classes
    }
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n || text[i] != ':') continue;
    ++i;
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n || (text[i] != '\'' && text[i] != '"')) continue;
    const char q = text[i++];
    std::string name;
    while (i < n && text[i] != q) {
      if (text[i] == '\\' && i + 1 < n) ++i;
      name.push_back(text[i++]);
    }
    ++i;
    names[id] = name;
  }
  std::vector<std::string> out;
  for (const auto& [id, name] : names) {
    if (id != static_cast<int>(out.size())) return {};  // ids must be 0..n-1
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> read_names_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

OnnxModel OnnxModel::load(const std::string& path, const std::string& fallback_names_file) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (!f.good() && !f.eof()) fail(path, "read error");
  return from_bytes(ss.str(), path, fallback_names_file);
}

OnnxModel OnnxModel::from_bytes(const std::string& bytes, const std::string& label,
                                const std::string& fallback_names_file) {
  if (bytes.empty()) fail(label, "file is empty");
  OnnxModel m;
  m.impl_ = std::make_unique<Impl>();
  m.label_ = label;
  auto& model = m.impl_->model;
  if (!model.ParseFromString(bytes))
    fail(label, "not an ONNX model (protobuf ModelProto does not parse; truncated or another format?)");
  if (!model.has_graph() || model.graph().node_size() == 0)
    fail(label, "not an ONNX model (no graph nodes; truncated or another format?)");
  const auto& g = model.graph();
  m.sha256_ = sha256_hex(bytes);

  GraphIndex idx(g);
  for (const auto& [name, t] : idx.constants) check_tensor(*t, label);
  // Every node input must come from somewhere: a truncated file can still parse, minus its tail.
  for (const auto& n : g.node())
    for (const auto& in : n.input())
      if (!in.empty() && !idx.constants.count(in) && !idx.producer.count(in) && !idx.graph_inputs.count(in))
        fail(label, "graph is incomplete: tensor '" + in + "' used by a " + n.op_type() +
                        " node is never produced (truncated file?)");

  // The image input: the one graph input that is not an initializer, shaped [1, 3, H, W].
  std::vector<const ox::ValueInfoProto*> inputs;
  for (const auto& in : g.input())
    if (!idx.constants.count(in.name())) inputs.push_back(&in);
  if (inputs.size() != 1) fail(label, "expected one image input, found " + std::to_string(inputs.size()));
  const auto dims = input_dims(*inputs[0]);
  if (dims.size() != 4 || dims[1] != 3)
    fail(label, "image input '" + inputs[0]->name() + "' is not [N, 3, H, W]");
  m.impl_->input_name = inputs[0]->name();

  int meta_stride = 0;
  InputSize meta_imgsz;
  for (const auto& p : model.metadata_props()) {
    if (p.key() == "names") {
      m.metadata_.class_names = parse_names_dict(p.value());
      if (!m.metadata_.class_names.empty()) m.metadata_.names_source = "metadata_props";
    } else if (p.key() == "stride") {
      meta_stride = std::atoi(p.value().c_str());
    } else if (p.key() == "imgsz") {
      // "[640, 640]" (h, w)
      int h = 0, w = 0;
      if (std::sscanf(p.value().c_str(), " [ %d , %d ]", &h, &w) == 2 && h > 0 && w > 0) meta_imgsz = {h, w};
    } else if (p.key() == "description") {
      m.metadata_.description = p.value();
    }
  }
  // The graph's static input shape is authoritative; Ultralytics' imgsz metadata covers dynamic exports.
  const InputSize fallback = meta_imgsz.height > 0 ? meta_imgsz : InputSize{640, 640};
  m.metadata_.native_input = {dims[2] > 0 ? static_cast<int>(dims[2]) : fallback.height,
                              dims[3] > 0 ? static_cast<int>(dims[3]) : fallback.width};

  const auto strides = propagate_strides(g, idx, m.impl_->input_name);
  const auto head = find_head(g, idx, strides);
  if (head.empty())
    fail(label,
         "Detect head not found (no Concat of box/class branches at strides 8/16/32); "
         "is this a YOLOv8/YOLO11 detection export?");
  for (std::size_t i = 1; i < head.size(); ++i)
    if (head[i].stride == head[i - 1].stride)
      fail(label, "Detect head is ambiguous: two levels at stride " + std::to_string(head[i].stride));
  m.layout_.reg_max = head[0].box_channels / 4;
  m.layout_.num_classes = head[0].class_channels;
  // Every class gets a name (generated when the file has none): bounded, so that a small file cannot make
  // the loader allocate gigabytes.
  if (m.layout_.num_classes > kMaxClasses)
    fail(label, "Detect head has " + std::to_string(m.layout_.num_classes) + " classes (more than " +
                    std::to_string(kMaxClasses) + "); is this a detection export?");
  for (const auto& h : head) m.levels_.push_back({h.tensor, h.stride});
  // Input sizes must be multiples of the coarsest level's stride (Ultralytics' `stride` metadata says the
  // same).
  m.metadata_.max_stride = head.back().stride;
  for (const auto& h : head)
    if (m.metadata_.max_stride % h.stride != 0)
      fail(label, "Detect head level at stride " + std::to_string(h.stride) +
                      " does not divide the coarsest stride " + std::to_string(m.metadata_.max_stride));
  if (meta_stride > 0 && meta_stride != m.metadata_.max_stride)
    fail(label, "metadata says stride " + std::to_string(meta_stride) +
                    " but the Detect head's coarsest level is at " + std::to_string(m.metadata_.max_stride));
  m.attention_blocks_ = static_cast<int>(find_attention_scales(g, idx).size());

  if (m.metadata_.class_names.size() != static_cast<std::size_t>(m.layout_.num_classes)) {
    auto names =
        fallback_names_file.empty() ? std::vector<std::string>{} : read_names_file(fallback_names_file);
    if (names.size() == static_cast<std::size_t>(m.layout_.num_classes)) {
      m.metadata_.class_names = std::move(names);
      m.metadata_.names_source = fallback_names_file;
    } else {
      m.metadata_.class_names.clear();
      for (int c = 0; c < m.layout_.num_classes; ++c)
        m.metadata_.class_names.push_back("class" + std::to_string(c));
      m.metadata_.names_source = "generated (no names in metadata_props or names file)";
    }
  }
  return m;
}

AdaptedGraph OnnxModel::adapt(InputSize input, const AdaptOptions& options) const {
  const int ms = metadata_.max_stride;
  if (input.height <= 0 || input.width <= 0 || input.height % ms != 0 || input.width % ms != 0)
    fail(label_,
         "input size " + size_str(input) + " is not a positive multiple of the stride " + std::to_string(ms));

  AdaptedGraph out;
  out.input = input;
  ox::ModelProto model = impl_->model;  // copy: the parsed stock graph is reused for other sizes
  auto& g = *model.mutable_graph();
  out.nodes_before = g.node_size();
  const InputSize native = metadata_.native_input;

  // 1. Cut at the raw per-level head outputs.
  if (options.cut_head) {
    g.clear_output();
    std::ostringstream cut;
    cut << "head cut at " << levels_.size() << " raw level outputs [1," << layout_.channels()
        << ",H/s,W/s] (s=";
    for (std::size_t i = 0; i < levels_.size(); ++i) {
      const auto& lv = levels_[i];
      set_value_info_4d(*g.add_output(), lv.tensor,
                        {1, layout_.channels(), input.height / lv.stride, input.width / lv.stride});
      out.levels.push_back(lv);
      out.output_names.push_back(lv.tensor);
      cut << (i ? "," : "") << lv.stride;
    }
    cut << "; reg_max " << layout_.reg_max << ", " << layout_.num_classes << " classes)";
    out.fixes.push_back(cut.str());
  } else {
    for (const auto& o : g.output()) out.output_names.push_back(o.name());
  }

  // Drop what no output needs any more (the stock DFL/decode tail), and stale shape annotations.
  {
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
  }

  // 2. Re-target the static input size.
  auto& in_vi = *std::find_if(g.mutable_input()->begin(), g.mutable_input()->end(),
                              [&](const auto& v) { return v.name() == impl_->input_name; });
  {
    auto* shape = in_vi.mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->mutable_dim(0)->set_dim_value(1);
    shape->mutable_dim(2)->set_dim_value(input.height);
    shape->mutable_dim(3)->set_dim_value(input.width);
  }
  if (!(input == native)) {
    GraphIndex idx(g);
    const auto strides = propagate_strides(g, idx, impl_->input_name);
    int rewritten = 0;
    std::vector<ox::TensorProto> new_consts;
    for (auto& n : *g.mutable_node()) {
      if (n.op_type() == "Resize" && n.input_size() > 3 && !n.input(3).empty())
        fail(label_,
             "cannot re-target input to " + size_str(input) + ": Resize node with fixed output sizes");
      if (n.op_type() != "Reshape" || n.input_size() != 2) continue;
      const auto* c = idx.constant(n.input(1));
      auto st = strides.find(n.input(0));
      if (!c || st == strides.end()) continue;
      const double s = st->second;
      const int64_t h0 = std::lround(native.height / s), w0 = std::lround(native.width / s);
      const int64_t h1 = std::lround(input.height / s), w1 = std::lround(input.width / s);
      auto shape = tensor_int64s(*c);
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
    out.fixes.push_back("input re-targeted " + size_str(native) + " -> " + size_str(input) + " (" +
                        std::to_string(rewritten) + " spatial Reshape constants rewritten)");
  } else {
    out.fixes.push_back("input " + size_str(input) + " (native size)");
  }

  // 3a. With custom layers, YOLO11's whole attention core becomes one AitwAttention node (which also makes
  //     the fusion fix below unnecessary for it).
  if (options.custom_layers) {
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
    if (!edits.replace.empty()) {
      const std::size_t blocks = edits.replace.size();
      edits.apply(g);
      out.fixes.push_back(std::to_string(blocks) + " attention block(s) -> AitwAttention");
    }
  }

  // 3. OpenCV 4.6 fuses the Mul after a two-input MatMul wrongly: scale q before the MatMul instead.
  if (options.fix_attention) {
    GraphIndex idx(g);
    auto found = find_attention_scales(g, idx);
    if (!found.empty()) {
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
      out.fixes.push_back("attention scale moved before q^T*k MatMul in " + std::to_string(found.size()) +
                          " block(s) (OpenCV 4.6 fusion bug)");
    }
  }

  // 4. aitw's custom layers: Sigmoid(x) * x -> AitwSiLU(x), so that the convolution producing x has one
  //    consumer and OpenCV fuses the activation into it.
  if (options.custom_layers) {
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
    if (!edits.replace.empty()) {
      const std::size_t pairs = edits.replace.size();
      edits.apply(g);
      out.fixes.push_back(std::to_string(pairs) + " Sigmoid*x pairs -> AitwSiLU (fusable into convolutions)");
    }
  }

  // 5. aitw's convolution (kernel/conv_layer.hpp) for every Conv node: OpenCV's importer names them all
  //    "Convolution", so the mark is what tells aitw's layer factory which ones to take.
  if (options.custom_layers) {
    int marked = 0;
    for (auto& n : *g.mutable_node()) {
      if (n.op_type() != "Conv") continue;
      auto* attr = n.add_attribute();
      attr->set_name(kernel::kConvolutionMark);
      attr->set_type(ox::AttributeProto::INT);
      attr->set_i(1);
      ++marked;
    }
    if (marked)
      out.fixes.push_back(std::to_string(marked) + " Conv nodes -> aitw Convolution (" +
                          kernel::convolution_kernels_in_use() + ")");
  }

  // Baseline only: the stock head's stride multiply, made runnable by expanding its [1,A] constant.
  if (options.expand_stride_mul && !options.cut_head) {
    GraphIndex idx(g);
    int64_t anchors = 0;
    for (const auto& lv : levels_) anchors += (input.height / lv.stride) * (input.width / lv.stride);
    for (auto& n : *g.mutable_node()) {
      if (n.op_type() != "Mul" || n.input_size() != 2) continue;
      for (int k = 0; k < 2; ++k) {
        const auto* c = idx.constant(n.input(k));
        if (!c || element_count(*c) != anchors || c->dims_size() > 2) continue;
        const auto v = tensor_floats(*c);
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
        out.fixes.push_back("stock head: stride constant expanded to [1,4," + std::to_string(anchors) + "]");
      }
    }
  }

  // Initializers nothing uses any more (the cut tail, replaced constants) would only cost load time.
  {
    std::unordered_set<std::string> used;
    for (const auto& n : g.node())
      for (const auto& in : n.input()) used.insert(in);
    google::protobuf::RepeatedPtrField<ox::TensorProto> kept;
    for (auto& t : *g.mutable_initializer())
      if (used.count(t.name())) kept.Add(std::move(t));
    g.mutable_initializer()->Swap(&kept);
    google::protobuf::RepeatedPtrField<ox::ValueInfoProto> inputs;
    for (auto& v : *g.mutable_input())
      if (v.name() == impl_->input_name || used.count(v.name())) inputs.Add(std::move(v));
    g.mutable_input()->Swap(&inputs);
  }

  out.nodes_after = g.node_size();
  if (!model.SerializeToString(&out.onnx_bytes)) fail(label_, "rewritten graph does not serialize");
  return out;
}

cv::dnn::Net load_net(const AdaptedGraph& graph, const std::string& label) {
  kernel::register_dnn_layers();
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(graph.onnx_bytes.data(), graph.onnx_bytes.size());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
  } catch (const cv::Exception& e) {
    fail(label, std::string("OpenCV DNN cannot load the rewritten graph: ") + e.what());
  }
}

std::string AdaptedGraph::summary() const {
  std::ostringstream s;
  s << "graph rewritten (" << nodes_before << " -> " << nodes_after << " nodes): ";
  for (std::size_t i = 0; i < fixes.size(); ++i) s << (i ? "; " : "") << fixes[i];
  return s.str();
}

}  // namespace aitw::pipeline
