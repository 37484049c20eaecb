// OnnxModel::adapt: the graph rewrite as an ordered list of passes (passes.hpp), and loading its result
// into OpenCV.
#include <sstream>

#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/model/onnx_model.hpp"
#include "onnx_model_impl.hpp"
#include "passes.hpp"

namespace aitw::model {

using namespace detail;

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
  const PassContext context{label_,  impl_->input_name, metadata_.native_input, input,
                            levels_, layout_,           options.precision,      options.residual_pairs};

  // In this order: the cut decides what the rest of the graph is (the stock tail is pruned before anything
  // looks at it); whole attention blocks are fused before the pre-scale fix, which then only finds the
  // blocks left to OpenCV's own layers.
  struct Pass {
    bool enabled;
    SummaryLine (*run)(ox::GraphProto&, const PassContext&);
  };
  const Pass passes[] = {
      {options.cut_head, cut_head},
      {true, prune_unreachable_nodes},
      {true, retarget_input},
      {options.custom_layers, fuse_attention},
      {options.fix_attention, prescale_attention},
      {options.custom_layers, fuse_silu},
      {options.custom_layers, mark_convolutions},
      {options.custom_layers, fuse_residual_adds},
      {options.custom_layers && options.read_in_place, read_concats_and_splits_in_place},
      {options.custom_layers, mark_resizes},
      {options.custom_layers && options.read_in_place && options.fold_upsampling, fold_upsampling},
      {options.custom_layers, mark_max_pools},
      {options.custom_layers, chain_max_pools},
      {options.custom_layers && options.bf16_pairs,
       pass_bf16_pairs},  // after the chains: SPPF's runs on pairs
      {options.expand_stride_mul && !options.cut_head, expand_stride_mul},
      {true, prune_unused_initializers},
  };
  for (const auto& pass : passes)
    if (pass.enabled)
      if (auto line = pass.run(g, context)) out.fixes.push_back(std::move(*line));
  // Only the cut changes the graph's outputs: the head levels, or else the stock outputs.
  if (options.cut_head) out.levels = levels_;
  for (const auto& o : g.output()) out.output_names.push_back(o.name());

  out.nodes_after = g.node_size();
  if (!model.SerializeToString(&out.onnx_bytes)) fail(label_, "rewritten graph does not serialize");
  return out;
}

std::string AdaptedGraph::summary() const {
  std::ostringstream s;
  s << "graph rewritten (" << nodes_before << " -> " << nodes_after << " nodes): ";
  for (std::size_t i = 0; i < fixes.size(); ++i) s << (i ? "; " : "") << fixes[i];
  return s.str();
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

std::vector<std::string> forward_output_names(const cv::dnn::Net& net, const AdaptedGraph& graph) {
  std::vector<std::string> names;
  for (const auto& name : graph.output_names) {
    names.push_back(name);
    const int id = net.getLayerId(name);
    if (id < 0 || net.getLayer(id)->type != "Identity") continue;
    const auto producers = net.getLayerInputs(id);
    // Only single-output layers: a layer's name stands for its first output.
    if (producers.size() == 1 && (producers[0]->type == "Concat" || producers[0]->type == "Convolution"))
      names.back() = producers[0]->name;
  }
  return names;
}

}  // namespace aitw::model
