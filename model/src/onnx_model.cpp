#include "aitw/model/onnx_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "aitw/base/read_file.hpp"
#include "aitw/base/sha256.hpp"
#include "aitw/model/class_names.hpp"
#include "graph.hpp"
#include "onnx_model_impl.hpp"

namespace aitw::model {
namespace {

using namespace detail;

// Elements a tensor may hold: far above any detector's largest weight, low enough that byte counts
// cannot overflow and a hostile file cannot make OpenCV allocate gigabytes.
constexpr int64_t kMaxTensorElements = int64_t{1} << 28;

// Far above any detection dataset's classes (LVIS has 1203, Objects365 365).
constexpr int kMaxClasses = 100000;

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

std::vector<int64_t> input_dims(const ox::ValueInfoProto& vi) {
  std::vector<int64_t> d;
  if (!vi.has_type() || !vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) return d;
  for (const auto& dim : vi.type().tensor_type().shape().dim())
    d.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  return d;
}

}  // namespace

OnnxModel::OnnxModel(OnnxModel&&) noexcept = default;
OnnxModel& OnnxModel::operator=(OnnxModel&&) noexcept = default;
OnnxModel::~OnnxModel() = default;

OnnxModel OnnxModel::load(const std::string& path, const std::string& fallback_names_file) {
  std::optional<std::string> bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const std::runtime_error&) {
    fail(path, "read error");
  }
  if (!bytes) fail(path, "cannot open file");
  return from_bytes(*bytes, path, fallback_names_file);
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

}  // namespace aitw::model
