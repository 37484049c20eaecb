// aitw's convolution (kernel/conv_layer.hpp) for every Conv node, and the residual Adds of the bottlenecks
// folded into the convolution that produces one of their operands.
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "passes.hpp"

namespace aitw::model::detail {
namespace {

// The shape aitw's kernels would run for a 2-D Conv node with constant weights, and whether they run it
// (what create_convolution_layer decides at load, from the same attributes): a fused Add is only safe on a
// convolution that is certain to be aitw's.
// `fused_ok`: also a node that already has a fused Add or inputs read in place (then inputs past the weights
// and the bias may be activations).
std::optional<kernel::ConvShape> aitw_shape(const ox::NodeProto& conv, const GraphIndex& idx,
                                            bool fused_ok = false) {
  if (conv.op_type() != "Conv" || conv.input_size() < 2 || !find_attr(conv, kernel::kConvolutionMark))
    return std::nullopt;
  if (!fused_ok && (conv.input_size() > 3 || find_attr(conv, kernel::kConvResidualMark) ||
                    find_attr(conv, kernel::kConvInputsAttr)))
    return std::nullopt;
  const auto* w = idx.constant(conv.input(1));
  if (!w || w->dims_size() != 4 || w->data_type() != ox::TensorProto::FLOAT) return std::nullopt;
  if (!fused_ok && conv.input_size() == 3 && !idx.is_constant(conv.input(2))) return std::nullopt;
  if (const auto* ap = find_attr(conv, "auto_pad"); ap && !ap->s().empty() && ap->s() != "NOTSET")
    return std::nullopt;
  for (int64_t d : attr_ints(conv, "dilations"))
    if (d != 1) return std::nullopt;
  const auto k = attr_ints(conv, "kernel_shape"), st = attr_ints(conv, "strides"),
             p = attr_ints(conv, "pads");
  if ((!k.empty() && k.size() != 2) || (!st.empty() && st.size() != 2) || (!p.empty() && p.size() != 4))
    return std::nullopt;
  kernel::ConvShape s;
  s.groups = static_cast<int>(attr_int(conv, "group", 1));
  s.out_channels = static_cast<int>(w->dims(0));
  s.in_channels = static_cast<int>(w->dims(1)) * s.groups;
  s.kernel_h = static_cast<int>(w->dims(2));
  s.kernel_w = static_cast<int>(w->dims(3));
  if (!k.empty() && (k[0] != s.kernel_h || k[1] != s.kernel_w)) return std::nullopt;
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
  if (!kernel::conv_unsupported_reason(s).empty()) return std::nullopt;
  return s;
}

bool aitw_runs(const ox::NodeProto& conv, const GraphIndex& idx, bool fused_ok = false) {
  return aitw_shape(conv, idx, fused_ok).has_value();
}

// A marked Conv node's activation inputs as kernel::kConvInputsAttr describes them: the data input (0),
// then every non-constant input after the weights and bias, each with its (first channel, count).
struct ConvInputs {
  std::vector<std::string> names;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::vector<std::string> constants;  // weights, bias: they stay inputs 1 and 2
};

ConvInputs read_conv_inputs(const ox::NodeProto& conv, const GraphIndex& idx) {
  ConvInputs c;
  c.names.push_back(conv.input(0));
  for (int i = 1; i < conv.input_size(); ++i)
    (idx.is_constant(conv.input(i)) ? c.constants : c.names).push_back(conv.input(i));
  const auto r = attr_ints(conv, kernel::kConvInputsAttr);
  for (std::size_t i = 0; i < c.names.size(); ++i)
    c.ranges.emplace_back(2 * i + 1 < r.size() ? r[2 * i] : 0, 2 * i + 1 < r.size() ? r[2 * i + 1] : -1);
  return c;
}

// Sets the INTS attribute `name` to `values`, replacing any it had.
void replace_ints_attr(ox::NodeProto& n, const char* name, const std::vector<int64_t>& values) {
  auto* attrs = n.mutable_attribute();
  for (int i = attrs->size() - 1; i >= 0; --i)
    if (attrs->Get(i).name() == name) attrs->DeleteSubrange(i, 1);
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void write_conv_inputs(ox::NodeProto& conv, const ConvInputs& c) {
  conv.clear_input();
  conv.add_input(c.names[0]);
  for (const auto& k : c.constants) conv.add_input(k);
  for (std::size_t i = 1; i < c.names.size(); ++i) conv.add_input(c.names[i]);
  std::vector<int64_t> ranges;
  for (const auto& [first, count] : c.ranges) ranges.insert(ranges.end(), {first, count});
  replace_ints_attr(conv, kernel::kConvInputsAttr, ranges);
}

}  // namespace

SummaryLine mark_convolutions(ox::GraphProto& g, const PassContext& c) {
  // bf16 is asked of every convolution; each runs it where the CPU can (kernel::conv_bf16_supported) and is
  // not depthwise, fp32 otherwise.
  const bool bf16 = c.precision == kernel::ConvPrecision::Bf16;
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() != "Conv") continue;
    set_int_attr(n, kernel::kConvolutionMark, 1);
    if (bf16) {
      auto* a = n.add_attribute();
      a->set_name(kernel::kConvPrecisionAttr);
      a->set_type(ox::AttributeProto::STRING);
      a->set_s("bf16");
    }
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  // What the layers will run (kernel::convolution_description's rule): bf16 on the AVX-512 kernels only.
  std::string precision;
  if (bf16 && !(kernel::conv_bf16_supported() && kernel::aitw_convolution_active()))
    precision = ", fp32: no bf16 on this CPU";
  else if (bf16 && kernel::conv_default_isa() != kernel::ConvIsa::Avx512)
    precision = std::string(", fp32: bf16 runs on the avx512 kernels, not ") +
                kernel::conv_isa_name(kernel::conv_default_isa());
  else if (bf16)
    precision = ", bf16";
  // (Also where a bad $AITW_PARALLEL fails the load, naming itself, rather than the first forward.)
  const std::string loops =
      std::strcmp(kernel::parallel_loops(), "aitw") == 0 ? "aitw's loop pool" : "OpenCV's loops";
  return std::to_string(marked) + " Conv nodes -> aitw Convolution (" + kernel::convolution_kernels_in_use() +
         precision + "; " + loops + ")";
}

SummaryLine fuse_residual_adds(ox::GraphProto& g, const PassContext&) {
  if (!kernel::convolution_fusion_enabled()) return std::nullopt;
  GraphIndex idx(g);
  NodeEdits edits;
  int fused_adds = 0;
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
          edits.drop.count(ci) || !aitw_runs(conv, idx))
        continue;
      // The fused node takes the convolution's place in the node order where the skip tensor exists there,
      // else the Add's (after both: YOLO11's attention adds its depthwise `pe` convolution of v, which comes
      // first, to the attention's output; OpenCV ran that Add as an Eltwise layer).
      const auto ps = idx.producer.find(skip);
      if (ps == idx.producer.end() && !idx.graph_inputs.count(skip)) continue;
      const bool at_add = ps != idx.producer.end() && ps->second >= ci;
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
      edits.drop.insert(at_add ? ci : ai);
      edits.replace[at_add ? ai : ci] = std::move(fused);
      ++fused_adds;
      break;
    }
  }
  if (fused_adds == 0) return std::nullopt;
  edits.apply(g);
  return std::to_string(fused_adds) + " residual Adds -> their convolution's output loop";
}

SummaryLine read_concats_and_splits_in_place(ox::GraphProto& g, const PassContext&) {
  if (!kernel::convolution_fusion_enabled()) return std::nullopt;
  std::unordered_set<std::string> outputs;
  for (const auto& o : g.output()) outputs.insert(o.name());
  const auto channel_axis = [](const ox::NodeProto& n) {
    const int64_t axis = attr_int(n, "axis", n.op_type() == "Split" ? 0 : -1);
    return axis == 1 || axis == -3;  // YOLO's activations are 4-D
  };

  // Concat -> its one consumer, a convolution of aitw's: the convolution reads the Concat's inputs.
  int concats = 0;
  {
    GraphIndex idx(g);
    NodeEdits edits;
    for (int ci = 0; ci < g.node_size(); ++ci) {
      const auto& cat = g.node(ci);
      if (cat.op_type() != "Concat" || cat.output_size() != 1 || !channel_axis(cat) || cat.input_size() < 2 ||
          cat.input_size() > kernel::kMaxConvInputs || outputs.count(cat.output(0)))
        continue;
      std::unordered_set<std::string> seen;
      bool ok = true;
      for (const auto& in : cat.input())
        ok = ok && !in.empty() && !idx.is_constant(in) && seen.insert(in).second;
      const auto it = idx.consumers.find(cat.output(0));
      if (!ok || it == idx.consumers.end() || it->second.size() != 1) continue;
      const int k = it->second[0];
      const auto& conv = g.node(k);
      if (edits.replace.count(k) || !aitw_runs(conv, idx) || conv.input(0) != cat.output(0) ||
          attr_int(conv, "group", 1) != 1)
        continue;
      ConvInputs c = read_conv_inputs(conv, idx);
      c.names.assign(cat.input().begin(), cat.input().end());
      c.ranges.assign(c.names.size(), {0, -1});
      ox::NodeProto fused = conv;
      write_conv_inputs(fused, c);
      edits.replace[k] = std::move(fused);
      edits.drop.insert(ci);
      ++concats;
    }
    edits.apply(g);
  }

  // A channel Split whose every output only convolutions of aitw's read (what is left of C3k2 / C2f
  // once their Concat is read in place: the bottleneck's input and skip): they read the Split's input at
  // the output's channel range instead, and the Split goes.
  int splits = 0;
  {
    GraphIndex idx(g);
    NodeEdits edits;
    std::map<int, ConvInputs> edited;
    for (int si = 0; si < g.node_size(); ++si) {
      const auto& split = g.node(si);
      if (split.op_type() != "Split" || !channel_axis(split) || split.output_size() < 2 ||
          idx.is_constant(split.input(0)))
        continue;
      std::vector<int64_t> sizes = attr_ints(split, "split");
      if (sizes.empty() && split.input_size() > 1)
        if (const auto* t = idx.constant(split.input(1))) sizes = tensor_int64s(*t);
      if (static_cast<int>(sizes.size()) != split.output_size()) continue;
      bool ok = true;
      for (int j = 0; j < split.output_size() && ok; ++j) {
        const auto it = idx.consumers.find(split.output(j));
        ok = sizes[j] > 0 && !outputs.count(split.output(j)) && it != idx.consumers.end();
        for (int k : ok ? it->second : std::vector<int>{})
          ok = ok && aitw_runs(g.node(k), idx, true) && attr_int(g.node(k), "group", 1) == 1;
      }
      if (!ok) continue;
      int64_t first = 0;
      for (int j = 0; j < split.output_size(); first += sizes[j], ++j)
        for (int k : idx.consumers.at(split.output(j))) {
          auto e = edited.find(k);
          if (e == edited.end()) e = edited.emplace(k, read_conv_inputs(g.node(k), idx)).first;
          ConvInputs& c = e->second;
          for (std::size_t p = 0; p < c.names.size(); ++p) {
            if (c.names[p] != split.output(j)) continue;
            auto& [f, n] = c.ranges[p];
            n = n < 0 ? sizes[j] - f : n;
            f += first;
            c.names[p] = split.input(0);
          }
        }
      edits.drop.insert(si);
      ++splits;
    }
    for (auto& [k, c] : edited) {
      // Neighbouring data inputs that are now adjacent ranges of one tensor become one (a C3k2's two halves).
      std::size_t data = c.names.size() - (find_attr(g.node(k), kernel::kConvResidualMark) ? 1 : 0);
      for (std::size_t p = 0; p + 1 < data;) {
        auto& a = c.ranges[p];
        const auto& b = c.ranges[p + 1];
        if (c.names[p] == c.names[p + 1] && a.second > 0 && a.first + a.second == b.first) {
          a.second = b.second < 0 ? -1 : a.second + b.second;
          c.names.erase(c.names.begin() + static_cast<std::ptrdiff_t>(p) + 1);
          c.ranges.erase(c.ranges.begin() + static_cast<std::ptrdiff_t>(p) + 1);
          --data;
        } else {
          ++p;
        }
      }
      ox::NodeProto n = g.node(k);
      write_conv_inputs(n, c);
      edits.replace[k] = std::move(n);
    }
    edits.apply(g);
  }
  if (concats == 0 && splits == 0) return std::nullopt;
  return std::to_string(concats) + " Concat and " + std::to_string(splits) +
         " channel Split nodes -> read in place by their convolutions";
}

SummaryLine fold_upsampling(ox::GraphProto& g, const PassContext&) {
  if (!kernel::convolution_fusion_enabled()) return std::nullopt;
  std::unordered_set<std::string> outputs;
  for (const auto& o : g.output()) outputs.insert(o.name());
  GraphIndex idx(g);
  NodeEdits edits;
  int folded = 0;
  for (int ri = 0; ri < g.node_size(); ++ri) {
    const auto& rs = g.node(ri);
    // A Resize of aitw's (nearest, asymmetric, floor) by a constant integer factor f >= 2 on both spatial
    // axes and 1 on the others: output pixel (y, x) is input pixel (y / f, x / f).
    if (!nearest_floor_resize(rs) || !find_attr(rs, kernel::kResizeMark) || rs.input_size() < 3 ||
        rs.output_size() != 1 || outputs.count(rs.output(0)) || idx.is_constant(rs.input(0)))
      continue;
    if (rs.input_size() > 3 && !rs.input(3).empty()) continue;  // sizes, not scales
    const auto* t = idx.constant(rs.input(2));
    const std::vector<float> scales = t ? tensor_floats(*t) : std::vector<float>{};
    if (scales.size() != 4 || scales[0] != 1.f || scales[1] != 1.f || scales[2] != scales[3] ||
        scales[2] < 2.f || scales[2] > 16.f || scales[2] != static_cast<float>(static_cast<int>(scales[2])))
      continue;
    const auto it = idx.consumers.find(rs.output(0));
    if (it == idx.consumers.end() || it->second.size() != 1) continue;
    const int k = it->second[0];
    const auto& conv = g.node(k);
    if (edits.replace.count(k) || !aitw_runs(conv, idx, true) || attr_int(conv, "group", 1) != 1 ||
        find_attr(conv, kernel::kConvResidualMark))
      continue;
    const auto ks = attr_ints(conv, "kernel_shape"), st = attr_ints(conv, "strides"),
               pads = attr_ints(conv, "pads");
    const auto* w = idx.constant(conv.input(1));
    bool plain = w->dims(2) == 1 && w->dims(3) == 1;
    for (int64_t v : st) plain = plain && v == 1;
    for (int64_t v : pads) plain = plain && v == 0;
    if (!plain || (!ks.empty() && (ks[0] != 1 || ks[1] != 1))) continue;
    ConvInputs c = read_conv_inputs(conv, idx);
    std::vector<int64_t> factors = attr_ints(conv, kernel::kConvUpscaleAttr);
    factors.resize(c.names.size(), 1);
    int uses = 0, at = -1, others = 0;
    for (std::size_t p = 0; p < c.names.size(); ++p) {
      if (c.names[p] == rs.output(0))
        ++uses, at = static_cast<int>(p);
      else if (factors[p] == 1)
        ++others;
    }
    // Read whole, once, beside an input at the output's size; upscaled inputs share one factor.
    if (uses != 1 || others == 0 || c.ranges[at] != std::pair<int64_t, int64_t>{0, -1}) continue;
    bool same = true;
    for (int64_t f : factors) same = same && (f == 1 || f == static_cast<int64_t>(scales[2]));
    if (!same) continue;
    c.names[at] = rs.input(0);
    factors[at] = static_cast<int64_t>(scales[2]);
    ox::NodeProto fused = conv;
    write_conv_inputs(fused, c);
    replace_ints_attr(fused, kernel::kConvUpscaleAttr, factors);
    edits.replace[k] = std::move(fused);
    edits.drop.insert(ri);
    ++folded;
  }
  edits.apply(g);
  if (folded == 0) return std::nullopt;
  return std::to_string(folded) + " nearest Resize nodes -> read at their input's size by the 1x1 after them";
}

}  // namespace aitw::model::detail

namespace aitw::model::detail {

SummaryLine pass_bf16_pairs(ox::GraphProto& g, const PassContext& c) {
  if (c.precision != kernel::ConvPrecision::Bf16 || !kernel::convolution_pairs_enabled()) return std::nullopt;
  GraphIndex idx(g);
  std::unordered_set<std::string> outputs;
  for (const auto& o : g.output()) outputs.insert(o.name());
  // A convolution that runs bf16 (kernel::conv_bf16_pays: not depthwise), or an fp32 one that reads and
  // writes pairs (kernel::conv_fp32_pairs: a depthwise 3x3, which then computes on the bf16 rounding of its
  // input). It may read pairs; it writes them only without an upscaled input (kConvUpscaleAttr: the addend's
  // pass runs on its fp32 output).
  const auto fp32_pairs = [&](const ox::NodeProto& n) {
    const auto s = aitw_shape(n, idx, true);
    return s && !kernel::conv_bf16_pays(*s) && kernel::conv_fp32_pairs(*s, kernel::conv_default_isa());
  };
  const auto pair_reader = [&](const ox::NodeProto& n) {
    const auto s = aitw_shape(n, idx, true);
    return s && (kernel::conv_bf16_pays(*s) || fp32_pairs(n));
  };
  const auto pair_writer = [&](const ox::NodeProto& n) {
    return pair_reader(n) && !find_attr(n, kernel::kConvUpscaleAttr);
  };
  // A tensor's channels where a convolution of known weights (through an optional AitwMaxPoolChain, then an
  // optional AitwSiLU) produced it, else -1.
  const auto channels = [&](const std::string& t) -> int64_t {
    auto p = idx.producer.find(t);
    if (p != idx.producer.end() && g.node(p->second).op_type() == kernel::kMaxPoolChainOpType)
      p = idx.producer.find(g.node(p->second).input(0));
    if (p != idx.producer.end() && g.node(p->second).op_type() == kernel::kSiLUOpType)
      p = idx.producer.find(g.node(p->second).input(0));
    if (p == idx.producer.end() || g.node(p->second).op_type() != "Conv") return -1;
    const auto* w = idx.constant(g.node(p->second).input(1));
    return w && w->dims_size() == 4 ? w->dims(0) : -1;
  };
  // Whether convolution `n` can read tensor `t` as pairs wherever it reads it: as data, from an even channel
  // at an even offset of its input channels, and with an even count unless it is the last data input; as its
  // fused Add's skip (c.residual_pairs), where it runs bf16 (it widens the pairs into its fp32 sum:
  // PackedConv::forward's residual_pairs), from an even channel. With upscaled inputs (kConvUpscaleAttr) two
  // products read the data, the upscaled inputs and the others, each its own channels from 0: offsets and
  // last inputs are per product.
  const auto reads_pairs = [&](const ox::NodeProto& n, const std::string& t) {
    if (!pair_reader(n)) return false;
    const ConvInputs in = read_conv_inputs(n, idx);
    const std::size_t data = in.names.size() - (find_attr(n, kernel::kConvResidualMark) ? 1 : 0);
    std::vector<int64_t> up = attr_ints(n, kernel::kConvUpscaleAttr);
    up.resize(data, 1);
    const auto product = [&](std::size_t i) { return i < data && up[i] > 1 ? 1 : 0; };
    const auto last_of_product = [&](std::size_t i) {
      for (std::size_t j = i + 1; j < data; ++j)
        if (product(j) == product(i)) return false;
      return true;
    };
    bool found = false;
    int64_t offsets[2] = {0, 0};
    for (std::size_t i = 0; i < in.names.size(); ++i) {
      const auto [first, count] = in.ranges[i];
      const int64_t all = channels(in.names[i]);
      const int64_t n_i = count >= 0 ? count : all < 0 ? -1 : all - first;
      int64_t& offset = offsets[product(i)];
      if (in.names[i] == t) {
        // An odd count only where it ends the tensor: the last pair's high half is then the producer's 0, not
        // a channel past the range (its bf16 could be Inf, and 0 x Inf is NaN).
        const bool odd_inside = n_i % 2 && (all < 0 || first + n_i != all);
        if (i >= data) {
          if (!c.residual_pairs || fp32_pairs(n) || first % 2 || odd_inside) return false;
        } else if (first % 2 || offset % 2 || (!last_of_product(i) && (n_i < 0 || n_i % 2)) || odd_inside) {
          return false;
        }
        found = true;
      }
      if (n_i < 0)
        offset = 1;  // unknown: no later input may be pairs
      else if (offset % 2 == 0)
        offset += n_i;
    }
    return found;
  };
  // Whether node `n` is SPPF's AitwMaxPoolChain over tensor `t` whose outputs only convolutions read, each
  // as pairs: then it runs on pairs too (kernel::kPoolPairsAttr; the values its readers would make).
  const auto chain_on_pairs = [&](const ox::NodeProto& n, const std::string& t) {
    if (n.op_type() != kernel::kMaxPoolChainOpType || n.input_size() != 1 || n.input(0) != t ||
        n.output_size() < 1)
      return false;
    for (const auto& o : n.output()) {
      const auto it = idx.consumers.find(o);
      if (outputs.count(o) || it == idx.consumers.end() || it->second.empty()) return false;
      for (const int ci : it->second)
        if (!reads_pairs(g.node(ci), o)) return false;
    }
    return true;
  };

  std::map<int, ox::NodeProto> changed;  // node index -> its rewrite
  const auto node = [&](int i) -> ox::NodeProto& {
    auto it = changed.find(i);
    return it != changed.end() ? it->second : changed.emplace(i, g.node(i)).first->second;
  };
  std::set<int> dropped;
  std::unordered_set<std::string> pair_tensors;
  int fp32_writers = 0, chains = 0, chain_outputs = 0;
  for (int pi = 0; pi < g.node_size(); ++pi) {
    const auto& p = g.node(pi);
    // Not a fused Add's convolution: the kernels write its sum as pairs too (PackedConv::forward), but the
    // bottlenecks' last convolutions writing pairs as well (YOLO11n 33 tensors, YOLOv8n 34) measured no
    // faster: layers 15.53 -> 15.93 ms and 15.40 -> 15.71 in 7 alternated rounds on a busy host (their units'
    // buffers and the residual's pass cost what their readers saved). Again with the skips read as pairs
    // (YOLO11n 19 -> 5 converted inputs; Zen 5 VM, bf16, 60 alternated rounds of 20 forwards): forward 0.990,
    // per-layer sums 1.003 of the skips-only graph.
    // The producer runs bf16, or is an fp32 depthwise 3x3 that rounds its fp32 output into pairs
    // (kernel::conv_fp32_pairs): its pairs are those its bf16 readers would make, and an fp32 depthwise
    // reader computes on them (the bf16 rounding of its fp32 input). Between two fp32 depthwise layers a
    // tensor stays fp32: no bf16 multiply would gain from the rounding.
    if (p.output_size() != 1 || !pair_writer(p) || find_attr(p, kernel::kConvResidualMark) ||
        find_attr(p, kernel::kConvActivationAttr))
      continue;
    std::string t = p.output(0);
    int silu = -1;
    if (const auto it = idx.consumers.find(t); !outputs.count(t) && it != idx.consumers.end() &&
                                               it->second.size() == 1 &&
                                               g.node(it->second[0]).op_type() == kernel::kSiLUOpType) {
      silu = it->second[0];
      t = g.node(silu).output(0);
    }
    const auto it = idx.consumers.find(t);
    if (outputs.count(t) || it == idx.consumers.end() || it->second.empty()) continue;
    bool ok = true, bf16_side = !fp32_pairs(p);
    std::vector<int> pair_chains;
    for (const int ci : it->second) {
      if (reads_pairs(g.node(ci), t)) {
        bf16_side |= !fp32_pairs(g.node(ci));
        continue;
      }
      if (chain_on_pairs(g.node(ci), t)) {
        pair_chains.push_back(ci);
        for (const auto& o : g.node(ci).output())
          for (const int r : idx.consumers.at(o)) bf16_side |= !fp32_pairs(g.node(r));
      } else {
        ok = false;
      }
    }
    if (!ok || !bf16_side) continue;
    for (const int ci : pair_chains) {
      set_int_attr(node(ci), kernel::kPoolPairsAttr, 1);
      for (const auto& o : g.node(ci).output()) pair_tensors.insert(o);
      ++chains;
      chain_outputs += g.node(ci).output_size();
    }
    ox::NodeProto& q = node(pi);
    if (silu >= 0) {
      q.set_output(0, t);
      auto* a = q.add_attribute();
      a->set_name(kernel::kConvActivationAttr);
      a->set_type(ox::AttributeProto::STRING);
      a->set_s("silu");
      dropped.insert(silu);
    }
    set_int_attr(q, kernel::kConvPairsOutAttr, 1);
    pair_tensors.insert(t);
    fp32_writers += fp32_pairs(p);
  }
  if (pair_tensors.empty()) return std::nullopt;
  int readers = 0, fp32_readers = 0, residual_readers = 0;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (n.op_type() != "Conv") continue;
    const ConvInputs in = read_conv_inputs(n, idx);
    const bool residual = find_attr(n, kernel::kConvResidualMark) != nullptr;
    const std::size_t data = in.names.size() - (residual ? 1 : 0);
    std::vector<int64_t> flags(data, 0);
    bool any = false;
    for (std::size_t k = 0; k < data; ++k) any |= (flags[k] = pair_tensors.count(in.names[k])) != 0;
    if (residual && pair_tensors.count(in.names.back())) {  // the skip's flag, last
      flags.push_back(1);
      any = true;
      ++residual_readers;
    }
    if (!any) continue;
    replace_ints_attr(node(i), kernel::kConvPairsInAttr, flags);
    ++readers;
    fp32_readers += fp32_pairs(n);
  }
  NodeEdits edits;
  edits.drop = dropped;
  for (auto& [i, n] : changed) edits.replace[i] = std::move(n);
  edits.apply(g);
  std::string by_chains;
  if (chains > 0)
    by_chains = ", " + std::to_string(chain_outputs) + " by " + std::to_string(chains) + " max pool chain" +
                (chains > 1 ? "s" : "");
  return std::to_string(pair_tensors.size()) + " tensors between convolutions as bf16 channel pairs (" +
         std::to_string(readers) + " convolutions read them, " + std::to_string(fp32_readers) +
         " of them fp32 depthwise, " + std::to_string(residual_readers) + " as their fused Add's skip; " +
         std::to_string(fp32_writers) + " written by fp32 depthwise layers" + by_chains + ")";
}

}  // namespace aitw::model::detail
