// aitw's convolution (kernel/conv_layer.hpp) for every Conv node. OpenCV's importer names them all
// "Convolution", so the mark is what tells aitw's layer factory which ones to take: a graph adapted without
// custom layers keeps OpenCV's own convolution (the benchmark baseline).
#include "aitw/kernel/conv_layer.hpp"
#include "passes.hpp"

namespace aitw::model::detail {

SummaryLine mark_convolutions(ox::GraphProto& g, const PassContext&) {
  int marked = 0;
  for (auto& n : *g.mutable_node()) {
    if (n.op_type() != "Conv") continue;
    auto* attr = n.add_attribute();
    attr->set_name(kernel::kConvolutionMark);
    attr->set_type(ox::AttributeProto::INT);
    attr->set_i(1);
    ++marked;
  }
  if (marked == 0) return std::nullopt;
  return std::to_string(marked) + " Conv nodes -> aitw Convolution (" + kernel::convolution_kernels_in_use() +
         ")";
}

}  // namespace aitw::model::detail
