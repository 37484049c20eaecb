// Each adapter pass alone, on a small graph built here: it does its rewrite, and it leaves a graph without
// its pattern as it was (byte for byte). The passes run in order on real exports in adapter_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/model/error.hpp"
#include "passes.hpp"

namespace aitw::model::detail {
namespace {

// --- graph building --------------------------------------------------------------------------------------

void set_io(ox::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(ox::TensorProto::FLOAT);
  for (auto d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

ox::NodeProto& add_node(ox::GraphProto& g, const std::string& op, std::vector<std::string> in,
                        std::vector<std::string> out, const std::string& name = "") {
  auto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(g.node_size()) : name);
  for (auto& i : in) n->add_input(i);
  for (auto& o : out) n->add_output(o);
  return *n;
}

void add_ints(ox::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void add_int(ox::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto::INT);
  a->set_i(v);
}

ox::TensorProto& add_floats(ox::GraphProto& g, const std::string& name, std::vector<int64_t> dims,
                            std::vector<float> v) {
  auto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(ox::TensorProto::FLOAT);
  for (auto d : dims) t->add_dims(d);
  for (auto x : v) t->add_float_data(x);
  return *t;
}

void add_int64s(ox::GraphProto& g, const std::string& name, std::vector<int64_t> v) {
  auto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(ox::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(v.size()));
  for (auto x : v) t->add_int64_data(x);
}

// A 1x1 convolution (weights not checked by the passes) with the given stride.
void add_conv(ox::GraphProto& g, const std::string& in, const std::string& out, int cin, int cout,
              int stride) {
  add_floats(g, out + "_w", {cout, cin, 1, 1},
             std::vector<float>(static_cast<std::size_t>(cout * cin), 0.1f));
  auto& n = add_node(g, "Conv", {in, out + "_w"}, {out});
  add_ints(n, "strides", {stride, stride});
  add_ints(n, "kernel_shape", {1, 1});
}

void add_transpose_last_two(ox::GraphProto& g, const std::string& in, const std::string& out) {
  add_ints(add_node(g, "Transpose", {in}, {out}), "perm", {0, 1, 3, 2});
}

// The context of a two-level head (strides 8 and 16, reg_max 4, 2 classes) on a 64x64 image input "x".
PassContext context(InputSize input = {64, 64}) {
  PassContext c;
  c.label = "synthetic.onnx";
  c.input_name = "x";
  c.native = {64, 64};
  c.input = input;
  c.levels = {{"l8", 8}, {"l16", 16}};
  c.layout.reg_max = 4;
  c.layout.num_classes = 2;
  return c;
}

std::vector<std::string> op_types(const ox::GraphProto& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  return ops;
}

using Ops = std::vector<std::string>;

const ox::TensorProto* initializer(const ox::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

// Runs `pass` on a copy of `g` and expects no line and the same bytes.
void expect_untouched(SummaryLine (*pass)(ox::GraphProto&, const PassContext&), const ox::GraphProto& g,
                      const PassContext& c = context()) {
  ox::GraphProto copy = g;
  EXPECT_FALSE(pass(copy, c).has_value());
  EXPECT_EQ(copy.SerializeAsString(), g.SerializeAsString());
}

// --- the head ---------------------------------------------------------------------------------------------

// Two head levels (Concat of a box and a class branch) and a stock tail that flattens them into "y".
ox::GraphProto two_level_head() {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "a", 3, 8, 8);
  add_conv(g, "a", "b", 8, 8, 2);
  for (const auto& [feat, level] : {std::pair{"a", "l8"}, std::pair{"b", "l16"}}) {
    add_conv(g, feat, std::string(level) + "box", 8, 16, 1);
    add_conv(g, feat, std::string(level) + "cls", 8, 2, 1);
    add_int(add_node(g, "Concat", {std::string(level) + "box", std::string(level) + "cls"}, {level}), "axis",
            1);
    add_int64s(g, std::string(level) + "_shape", {1, 18, -1});
    add_node(g, "Reshape", {level, std::string(level) + "_shape"}, {std::string(level) + "_flat"});
  }
  add_int(add_node(g, "Concat", {"l8_flat", "l16_flat"}, {"y"}), "axis", 2);
  set_io(g.add_output(), "y", {1, 18, 80});
  return g;
}

TEST(AdapterPasses, CutHeadMakesTheRawLevelsTheOutputs) {
  ox::GraphProto g = two_level_head();
  const int nodes = g.node_size();
  const auto line = cut_head(g, context({32, 64}));
  EXPECT_EQ(line, "head cut at 2 raw level outputs [1,18,H/s,W/s] (s=8,16; reg_max 4, 2 classes)");
  ASSERT_EQ(g.output_size(), 2);
  EXPECT_EQ(g.output(0).name(), "l8");
  EXPECT_EQ(g.output(1).name(), "l16");
  const auto& shape = g.output(1).type().tensor_type().shape();
  ASSERT_EQ(shape.dim_size(), 4);
  EXPECT_EQ(shape.dim(1).dim_value(), 18);
  EXPECT_EQ(shape.dim(2).dim_value(), 2);  // 32 / 16
  EXPECT_EQ(shape.dim(3).dim_value(), 4);  // 64 / 16
  EXPECT_EQ(g.node_size(), nodes);         // the tail is left to the pruning pass
}

TEST(AdapterPasses, CutHeadLeavesAnAlreadyCutGraphAsItWas) {
  ox::GraphProto g = two_level_head();
  ASSERT_TRUE(cut_head(g, context()));
  const ox::GraphProto cut = g;
  ASSERT_TRUE(cut_head(g, context()));  // always says what the outputs are
  EXPECT_EQ(g.SerializeAsString(), cut.SerializeAsString());
}

TEST(AdapterPasses, ExpandStrideMulRepeatsTheAnchorConstant) {
  // Levels at strides 8 and 16 on 64x64: 64 + 16 = 80 anchors.
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 4, 80});
  std::vector<float> strides(80);
  for (int i = 0; i < 80; ++i) strides[i] = i < 64 ? 8.f : 16.f;
  add_floats(g, "anchor_strides", {1, 80}, strides);
  add_node(g, "Mul", {"x", "anchor_strides"}, {"y"});
  set_io(g.add_output(), "y", {1, 4, 80});
  const auto line = expand_stride_mul(g, context());
  EXPECT_EQ(line, "stock head: stride constant expanded to [1,4,80]");
  EXPECT_EQ(g.node(0).input(1), "anchor_strides/aitw_expanded");
  const auto* t = initializer(g, "anchor_strides/aitw_expanded");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(std::vector<int64_t>(t->dims().begin(), t->dims().end()), (std::vector<int64_t>{1, 4, 80}));
  const auto v = tensor_floats(*t);
  ASSERT_EQ(v.size(), 320u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(v[r * 80 + 0], 8.f);
    EXPECT_EQ(v[r * 80 + 79], 16.f);
  }
}

TEST(AdapterPasses, ExpandStrideMulLeavesOtherMultipliesAlone) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 4, 79});
  add_floats(g, "other", {1, 79}, std::vector<float>(79, 2.f));  // not one value per anchor
  add_node(g, "Mul", {"x", "other"}, {"y"});
  set_io(g.add_output(), "y", {1, 4, 79});
  expect_untouched(expand_stride_mul, g);
}

// --- pruning ----------------------------------------------------------------------------------------------

TEST(AdapterPasses, PruneUnreachableNodesDropsTheDeadTailAndShapeAnnotations) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 8, 8});
  add_node(g, "Relu", {"x"}, {"a"});
  add_node(g, "Sigmoid", {"a"}, {"dead"});
  add_node(g, "Relu", {"dead"}, {"dead2"});
  set_io(g.add_value_info(), "dead", {1, 3, 8, 8});
  set_io(g.add_output(), "a", {1, 3, 8, 8});
  EXPECT_FALSE(prune_unreachable_nodes(g, context()).has_value());
  EXPECT_EQ(op_types(g), (Ops{"Relu"}));
  EXPECT_EQ(g.value_info_size(), 0);
}

TEST(AdapterPasses, PruneUnreachableNodesKeepsALiveGraph) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 8, 8});
  add_node(g, "Relu", {"x"}, {"a"});
  add_node(g, "Sigmoid", {"a"}, {"b"});
  set_io(g.add_output(), "b", {1, 3, 8, 8});
  expect_untouched(prune_unreachable_nodes, g);
}

TEST(AdapterPasses, PruneUnusedInitializersDropsConstantsAndTheirInputs) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  set_io(g.add_input(), "unused", {2});  // older exports list initializers as graph inputs too
  add_conv(g, "x", "a", 3, 8, 8);
  add_floats(g, "unused", {2}, {1.f, 2.f});
  set_io(g.add_output(), "a", {1, 8, 8, 8});
  EXPECT_FALSE(prune_unused_initializers(g, context()).has_value());
  ASSERT_EQ(g.initializer_size(), 1);
  EXPECT_EQ(g.initializer(0).name(), "a_w");
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "x");
}

TEST(AdapterPasses, PruneUnusedInitializersKeepsWhatIsRead) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "a", 3, 8, 8);
  set_io(g.add_output(), "a", {1, 8, 8, 8});
  expect_untouched(prune_unused_initializers, g);
}

// --- the input size ---------------------------------------------------------------------------------------

// A stride-8 feature map (8x8 at 64x64) reshaped the ways YOLO11's attention does: flattened spatially
// ([1, 8, 64]) and back ([1, 8, 8, 8]); plus a Reshape whose shape does not depend on the input.
ox::GraphProto spatial_reshapes() {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "f", 3, 8, 8);
  add_int64s(g, "flat_shape", {1, 8, 64});
  add_node(g, "Reshape", {"f", "flat_shape"}, {"flat"});
  add_int64s(g, "map_shape", {1, 8, 8, 8});
  add_node(g, "Reshape", {"flat", "map_shape"}, {"map"});
  add_int64s(g, "any_shape", {1, -1});
  add_node(g, "Reshape", {"map", "any_shape"}, {"y"});
  set_io(g.add_output(), "y", {1, 512});
  return g;
}

std::vector<int64_t> reshape_target(const ox::GraphProto& g, int node) {
  const auto* t = initializer(g, g.node(node).input(1));
  return t ? tensor_int64s(*t) : std::vector<int64_t>{};
}

TEST(AdapterPasses, RetargetInputRewritesTheSpatialReshapes) {
  ox::GraphProto g = spatial_reshapes();
  const auto line = retarget_input(g, context({32, 64}));
  EXPECT_EQ(line, "input re-targeted 64x64 -> 32x64 (2 spatial Reshape constants rewritten)");
  const auto& in = g.input(0).type().tensor_type().shape();
  EXPECT_EQ(in.dim(2).dim_value(), 32);
  EXPECT_EQ(in.dim(3).dim_value(), 64);
  EXPECT_EQ(g.node(1).input(1), "flat_shape/aitw_32x64");
  EXPECT_EQ(reshape_target(g, 1), (std::vector<int64_t>{1, 8, 32}));    // 4 x 8 positions
  EXPECT_EQ(reshape_target(g, 2), (std::vector<int64_t>{1, 8, 4, 8}));  // H/8 x W/8
  EXPECT_EQ(g.node(3).input(1), "any_shape");
  EXPECT_EQ(reshape_target(g, 3), (std::vector<int64_t>{1, -1}));
  // The originals stay (the pruning pass drops them): only the nodes were re-pointed.
  EXPECT_EQ(tensor_int64s(*initializer(g, "flat_shape")), (std::vector<int64_t>{1, 8, 64}));
}

TEST(AdapterPasses, RetargetInputAtTheNativeSizeLeavesTheGraphAsItWas) {
  const ox::GraphProto g = spatial_reshapes();
  ox::GraphProto copy = g;
  EXPECT_EQ(retarget_input(copy, context({64, 64})), "input 64x64 (native size)");
  EXPECT_EQ(copy.SerializeAsString(), g.SerializeAsString());
}

TEST(AdapterPasses, RetargetInputRefusesAResizeWithFixedSizes) {
  ox::GraphProto g = spatial_reshapes();
  add_int64s(g, "sizes", {1, 8, 16, 16});
  add_node(g, "Resize", {"f", "", "", "sizes"}, {"up"});
  try {
    retarget_input(g, context({32, 64}));
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("model 'synthetic.onnx': cannot re-target input to 32x64"),
              std::string::npos)
        << e.what();
  }
}

// --- attention --------------------------------------------------------------------------------------------

// YOLO11's attention core on activations q, k, v: Softmax((q^T k) * scale) then v times its transpose.
ox::GraphProto attention_core(const std::string& softmax_op = "Softmax") {
  ox::GraphProto g;
  for (const char* in : {"q", "k", "v"}) set_io(g.add_input(), in, {1, 2, 4, 16});
  add_floats(g, "scale", {}, {0.5f});
  add_transpose_last_two(g, "q", "qT");
  add_node(g, "MatMul", {"qT", "k"}, {"qk"});
  add_node(g, "Mul", {"qk", "scale"}, {"qks"});
  auto& sm = add_node(g, softmax_op, {"qks"}, {"attn"});
  if (softmax_op == "Softmax") add_int(sm, "axis", -1);
  add_transpose_last_two(g, "attn", "attnT");
  add_node(g, "MatMul", {"v", "attnT"}, {"o"}, "attn_out");
  set_io(g.add_output(), "o", {1, 2, 4, 16});
  return g;
}

TEST(AdapterPasses, FuseAttentionReplacesTheCoreWithOneNode) {
  ox::GraphProto g = attention_core();
  EXPECT_EQ(fuse_attention(g, context()), "1 attention block(s) -> AitwAttention");
  ASSERT_EQ(g.node_size(), 1);
  const auto& n = g.node(0);
  EXPECT_EQ(n.op_type(), kernel::kAttentionOpType);
  EXPECT_EQ(n.name(), "attn_out/aitw_attention");
  EXPECT_EQ(std::vector<std::string>(n.input().begin(), n.input().end()),
            (std::vector<std::string>{"q", "k", "v"}));
  EXPECT_EQ(n.output(0), "o");
  const auto* scale = find_attr(n, "scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->f(), 0.5f);
}

TEST(AdapterPasses, FuseAttentionLeavesOtherChainsAlone) {
  expect_untouched(fuse_attention, attention_core("Relu"));  // no Softmax: not an attention block
}

TEST(AdapterPasses, PrescaleAttentionMovesTheScaleBeforeTheMatMul) {
  ox::GraphProto g = attention_core();
  EXPECT_EQ(prescale_attention(g, context()),
            "attention scale moved before q^T*k MatMul in 1 block(s) (OpenCV 4.6 fusion bug)");
  EXPECT_EQ(op_types(g), (Ops{"Transpose", "Mul", "MatMul", "Softmax", "Transpose", "MatMul"}));
  const auto& pre = g.node(1);
  EXPECT_EQ(std::vector<std::string>(pre.input().begin(), pre.input().end()),
            (std::vector<std::string>{"qT", "scale"}));
  EXPECT_EQ(pre.output(0), "qT/aitw_prescaled");
  EXPECT_EQ(g.node(2).input(0), "qT/aitw_prescaled");
  EXPECT_EQ(g.node(3).input(0), "qk");  // the Softmax now reads the MatMul
}

TEST(AdapterPasses, PrescaleAttentionLeavesOtherMultipliesAlone) {
  ox::GraphProto g = attention_core();
  for (auto& t : *g.mutable_initializer())
    if (t.name() == "scale") {  // two values: a per-channel multiply, not the attention scale
      t.add_dims(2);
      t.add_float_data(0.25f);
    }
  expect_untouched(prescale_attention, g);
}

// --- SiLU -------------------------------------------------------------------------------------------------

TEST(AdapterPasses, FuseSiluReplacesSigmoidTimesX) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "c", 3, 8, 8);
  add_node(g, "Sigmoid", {"c"}, {"s"});
  add_node(g, "Mul", {"c", "s"}, {"y"}, "act");
  add_conv(g, "y", "d", 8, 8, 1);
  add_node(g, "Sigmoid", {"d"}, {"t"});
  add_node(g, "Mul", {"t", "d"}, {"z"}, "act2");  // either operand order
  set_io(g.add_output(), "z", {1, 8, 8, 8});
  EXPECT_EQ(fuse_silu(g, context()), "2 Sigmoid*x pairs -> AitwSiLU (fusable into convolutions)");
  EXPECT_EQ(op_types(g), (Ops{"Conv", kernel::kSiLUOpType, "Conv", kernel::kSiLUOpType}));
  EXPECT_EQ(g.node(1).name(), "act/aitw_silu");
  EXPECT_EQ(g.node(1).input(0), "c");
  EXPECT_EQ(g.node(1).output(0), "y");
  EXPECT_EQ(g.node(3).input(0), "d");
  EXPECT_EQ(g.node(3).output(0), "z");
}

TEST(AdapterPasses, FuseSiluLeavesOtherSigmoidsAlone) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "c", 3, 8, 8);
  add_conv(g, "x", "e", 3, 8, 8);
  add_node(g, "Sigmoid", {"c"}, {"s"});
  add_node(g, "Mul", {"e", "s"}, {"gated"});  // a gate on another tensor, not SiLU
  add_node(g, "Sigmoid", {"e"}, {"u"});
  add_node(g, "Mul", {"e", "u"}, {"y"});
  add_node(g, "Add", {"u", "y"}, {"z"});  // the sigmoid is read twice: the pair cannot become one node
  set_io(g.add_output(), "gated", {1, 8, 8, 8});
  set_io(g.add_output(), "z", {1, 8, 8, 8});
  expect_untouched(fuse_silu, g);
}

// --- residual Adds ---------------------------------------------------------------------------------------

bool has_attr(const ox::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return true;
  return false;
}

TEST(AdapterPasses, FuseResidualAddsFoldsTheBottleneckAddsIntoTheirConvolution) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 8, 16, 16});
  add_conv(g, "x", "a", 8, 8, 1);
  add_node(g, kernel::kSiLUOpType, {"a"}, {"sa"});
  add_conv(g, "sa", "b", 8, 8, 1);
  add_node(g, kernel::kSiLUOpType, {"b"}, {"sb"});
  add_node(g, "Add", {"x", "sb"}, {"y"});  // bottleneck: x + SiLU(conv(...))
  add_conv(g, "y", "d", 8, 8, 1);
  add_node(g, "Add", {"d", "y"}, {"z"});  // conv without activation, operands the other way round
  add_conv(g, "z", "e", 8, 8, 1);
  add_node(g, "Add", {"e", "z"}, {"u"});  // "e" is also a graph output: stays
  add_conv(g, "u", "f", 8, 8, 1);
  add_node(g, "Relu", {"u"}, {"r"});
  add_node(g, "Add", {"f", "r"}, {"v"});  // the skip is computed after the convolution: fused at the Add
  add_conv(g, "v", "h", 8, 8, 2);         // stride 2 of a 1x1 runs, but "h" + "h" adds a tensor to itself
  add_node(g, "Add", {"h", "h"}, {"w"});
  set_io(g.add_output(), "e", {1, 8, 16, 16});
  set_io(g.add_output(), "w", {1, 8, 8, 8});
  ASSERT_TRUE(mark_convolutions(g, context()).has_value());
  if (!kernel::convolution_fusion_enabled()) {
    expect_untouched(fuse_residual_adds, g);
    return;
  }
  EXPECT_EQ(fuse_residual_adds(g, context()), "3 residual Adds -> their convolution's output loop");
  EXPECT_EQ(op_types(g),
            (Ops{"Conv", kernel::kSiLUOpType, "Conv", "Conv", "Conv", "Add", "Relu", "Conv", "Conv", "Add"}));
  const auto& b = g.node(2);
  EXPECT_EQ(b.input_size(), 3);
  EXPECT_EQ(b.input(0), "sa");
  EXPECT_EQ(b.input(2), "x");
  EXPECT_EQ(b.output(0), "y");
  EXPECT_EQ(attr_int(b, kernel::kConvResidualMark, 0), 1);
  ASSERT_NE(find_attr(b, kernel::kConvActivationAttr), nullptr);
  EXPECT_EQ(find_attr(b, kernel::kConvActivationAttr)->s(), "silu");
  const auto& d = g.node(3);
  EXPECT_EQ(d.input(0), "y");
  EXPECT_EQ(d.input(2), "y");
  EXPECT_EQ(d.output(0), "z");
  EXPECT_TRUE(has_attr(d, kernel::kConvResidualMark));
  EXPECT_FALSE(has_attr(d, kernel::kConvActivationAttr));
  EXPECT_FALSE(has_attr(g.node(4), kernel::kConvResidualMark));
  // The convolution whose skip comes after it moved to the Add's place, after the Relu that computes it.
  const auto& f = g.node(7);
  EXPECT_EQ(g.node(6).output(0), "r");
  EXPECT_EQ(f.input(0), "u");
  EXPECT_EQ(f.input(2), "r");
  EXPECT_EQ(f.output(0), "v");
  EXPECT_TRUE(has_attr(f, kernel::kConvResidualMark));
  EXPECT_FALSE(has_attr(f, kernel::kConvActivationAttr));
  EXPECT_EQ(g.node(8).input(0), "v");
  // Run again: nothing left to fuse, and a fused convolution never takes a second Add.
  expect_untouched(fuse_residual_adds, g);
}

std::vector<int64_t> ints_of(const ox::NodeProto& n, const char* name) {
  return attr_ints(n, name);
}

// The context of the bf16 passes (AdaptOptions::precision bf16).
PassContext bf16_context() {
  PassContext c = context();
  c.precision = kernel::ConvPrecision::Bf16;
  return c;
}

// pass_bf16_pairs over g with its convolutions marked for bf16: its summary, or nullopt where this CPU runs
// no pairs (then the pass is checked to leave g as it is).
std::optional<SummaryLine> bf16_pairs_of(ox::GraphProto& g) {
  const PassContext bf16 = bf16_context();
  EXPECT_TRUE(mark_convolutions(g, bf16).has_value());
  if (!kernel::convolution_pairs_enabled()) {
    expect_untouched(pass_bf16_pairs, g, bf16);
    return std::nullopt;
  }
  return pass_bf16_pairs(g, bf16);
}

// Each node by its first output.
std::map<std::string, const ox::NodeProto*> nodes_by_output(const ox::GraphProto& g) {
  std::map<std::string, const ox::NodeProto*> m;
  for (const auto& n : g.node()) m[n.output(0)] = &n;
  return m;
}

// bf16 channel pairs between convolutions that read them: a (through its AitwSiLU, which its producer
// takes), c, d and s are read only by bf16 convolutions and depthwise 3x3 ones (fp32, conv_fp32_pairs), and
// the depthwise dd only by a bf16 one; b is also read by a MaxPool, cd (Concat read in place) with an odd
// count before another input, e at an odd channel offset, v0 by a stride-2 depthwise convolution (fp32, no
// pairs), w1 runs from one depthwise layer to another (both fp32: no bf16 side), and y is a graph output:
// they stay fp32. In fp32 nothing happens.
TEST(AdapterPasses, Bf16PairsOnlyWhereABf16ConvolutionWritesOrReadsThem) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 16, 8, 8});
  const auto depthwise = [&](const std::string& in, const std::string& out, int channels, int stride) {
    add_floats(g, out + "_w", {channels, 1, 3, 3}, std::vector<float>(channels * 9, 0.1f));
    auto& dw = add_node(g, "Conv", {in, out + "_w"}, {out});
    add_ints(dw, "kernel_shape", {3, 3});
    add_ints(dw, "pads", {1, 1, 1, 1});
    add_ints(dw, "strides", {stride, stride});
    add_int(dw, "group", channels);
  };
  add_conv(g, "x", "a0", 16, 96, 1);
  add_node(g, kernel::kSiLUOpType, {"a0"}, {"a"});
  add_conv(g, "a", "b", 96, 96, 1);
  add_conv(g, "b", "c", 96, 96, 1);
  add_node(g, "MaxPool", {"b"}, {"m"});
  depthwise("c", "cd", 96, 1);
  add_conv(g, "c", "d", 96, 96, 1);
  add_conv(g, "d", "e", 96, 96, 1);
  depthwise("d", "dd", 96, 1);
  add_conv(g, "dd", "g2", 96, 96, 1);
  add_conv(g, "m", "y", 96, 96, 1);
  // Reads cd's 3 first channels, then all of e: e at channel offset 3.
  add_floats(g, "f_w", {96, 99, 1, 1}, std::vector<float>(96 * 99, 0.1f));
  auto& f = add_node(g, "Conv", {"cd", "f_w", "e"}, {"z"});
  add_ints(f, kernel::kConvInputsAttr, {0, 3, 0, -1});
  // 1x1 layers of 32 outputs run bf16 too (kernel::conv_bf16_pays).
  add_conv(g, "x", "s", 16, 32, 1);
  add_conv(g, "s", "t", 32, 96, 1);
  add_conv(g, "x", "v0", 16, 32, 1);
  depthwise("v0", "v", 32, 2);
  // Two depthwise layers in a row: w0 -> w1 pairs (a bf16 writer), w1 -> w2 fp32 (both sides fp32: rounding
  // it would gain nothing), w2 -> w3 pairs (a bf16 reader).
  add_conv(g, "x", "w0", 16, 32, 1);
  depthwise("w0", "w1", 32, 1);
  depthwise("w1", "w2", 32, 1);
  add_conv(g, "w2", "w3", 32, 32, 1);
  set_io(g.add_output(), "y", {1, 96, 8, 8});
  set_io(g.add_output(), "z", {1, 96, 8, 8});
  set_io(g.add_output(), "t", {1, 96, 8, 8});
  set_io(g.add_output(), "g2", {1, 96, 8, 8});
  set_io(g.add_output(), "v", {1, 32, 4, 4});
  set_io(g.add_output(), "w3", {1, 32, 8, 8});
  const PassContext bf16 = bf16_context();
  ASSERT_TRUE(mark_convolutions(g, bf16).has_value());
  expect_untouched(pass_bf16_pairs, g);  // fp32
  if (!kernel::convolution_pairs_enabled()) {
    expect_untouched(pass_bf16_pairs, g, bf16);
    return;
  }
  EXPECT_EQ(pass_bf16_pairs(g, bf16),
            "7 tensors between convolutions as bf16 channel pairs (9 convolutions read them, 3 of them fp32 "
            "depthwise, 0 as their fused Add's skip; 2 written by fp32 depthwise layers)");
  EXPECT_EQ(op_types(g),
            (Ops{"Conv", "Conv", "Conv", "MaxPool", "Conv", "Conv", "Conv", "Conv", "Conv", "Conv", "Conv",
                 "Conv", "Conv", "Conv", "Conv", "Conv", "Conv", "Conv", "Conv"}));
  const auto by_output = nodes_by_output(g);
  EXPECT_EQ(attr_int(*by_output.at("a"), kernel::kConvPairsOutAttr, 0), 1);  // took its AitwSiLU
  ASSERT_NE(find_attr(*by_output.at("a"), kernel::kConvActivationAttr), nullptr);
  EXPECT_EQ(find_attr(*by_output.at("a"), kernel::kConvActivationAttr)->s(), "silu");
  for (const char* t : {"a", "c", "d", "dd", "s", "w0", "w2"})
    EXPECT_EQ(attr_int(*by_output.at(t), kernel::kConvPairsOutAttr, 0), 1) << t;
  for (const char* t : {"b", "cd", "d", "e", "dd", "g2", "t", "w1", "w3"})
    EXPECT_EQ(ints_of(*by_output.at(t), kernel::kConvPairsInAttr), (std::vector<int64_t>{1})) << t;
  for (const char* t : {"b", "e", "y", "z", "cd", "t", "g2", "v0", "v", "w1", "w3"})
    EXPECT_FALSE(has_attr(*by_output.at(t), kernel::kConvPairsOutAttr)) << t;
  for (const char* t : {"a", "c", "y", "z", "s", "v0", "v", "w0", "w2"})
    EXPECT_FALSE(has_attr(*by_output.at(t), kernel::kConvPairsInAttr)) << t;
}

// SPPF: a bf16 convolution's output read by an AitwMaxPoolChain and, with the chain's outputs, by the next
// convolution (their Concat read in place): the chain runs on pairs (kPoolPairsAttr) and its outputs are read
// as pairs too. A chain with an output that an OpenCV layer (a MaxPool) reads stays fp32, and so does its
// input.
TEST(AdapterPasses, Bf16PairsThroughSppfsMaxPoolChain) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 16, 8, 8});
  const auto chain = [&](const std::string& in, const std::string& prefix) {
    auto& n = add_node(g, kernel::kMaxPoolChainOpType, {in}, {prefix + "0", prefix + "1", prefix + "2"});
    add_int(n, kernel::kMaxPoolMark, 5);
    add_int(n, "outputs", 3);
  };
  add_conv(g, "x", "a", 16, 96, 1);
  chain("a", "p");
  add_floats(g, "z_w", {96, 384, 1, 1}, std::vector<float>(96 * 384, 0.1f));
  add_ints(add_node(g, "Conv", {"a", "z_w", "p0", "p1", "p2"}, {"z"}), kernel::kConvInputsAttr,
           {0, -1, 0, -1, 0, -1, 0, -1});
  add_conv(g, "x", "b", 16, 96, 1);
  chain("b", "q");
  add_floats(g, "u_w", {96, 288, 1, 1}, std::vector<float>(96 * 288, 0.1f));
  add_ints(add_node(g, "Conv", {"b", "u_w", "q0", "q1"}, {"u"}), kernel::kConvInputsAttr,
           {0, -1, 0, -1, 0, -1});
  add_node(g, "MaxPool", {"q2"}, {"v"});  // an OpenCV layer
  for (const char* o : {"z", "u"}) set_io(g.add_output(), o, {1, 96, 8, 8});
  set_io(g.add_output(), "v", {1, 96, 8, 8});
  const auto line = bf16_pairs_of(g);
  if (!line) return;  // no pairs on this CPU: checked to leave the graph as it is
  EXPECT_EQ(
      *line,
      "4 tensors between convolutions as bf16 channel pairs (1 convolutions read them, 0 of them fp32 "
      "depthwise, 0 as their fused Add's skip; 0 written by fp32 depthwise layers, 3 by 1 max pool chain)");
  const auto by_output = nodes_by_output(g);
  EXPECT_EQ(attr_int(*by_output.at("a"), kernel::kConvPairsOutAttr, 0), 1);
  EXPECT_EQ(attr_int(*by_output.at("p0"), kernel::kPoolPairsAttr, 0), 1);
  EXPECT_EQ(ints_of(*by_output.at("z"), kernel::kConvPairsInAttr), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_FALSE(has_attr(*by_output.at("b"), kernel::kConvPairsOutAttr));
  EXPECT_FALSE(has_attr(*by_output.at("q0"), kernel::kPoolPairsAttr));
  for (const char* t : {"u", "v"}) EXPECT_FALSE(has_attr(*by_output.at(t), kernel::kConvPairsInAttr)) << t;
}

// A neck's 1x1 reading an upscaled input (kConvUpscaleAttr, fold_upsampling's) reads pairs: its two products
// each count their channels from 0, so u (upscaled, after 3 channels at the output's size) starts its product
// at an even offset (c3, a graph output, stays fp32). It writes no pairs itself (its addend's pass runs on
// its fp32 output). u2, after 3 upscaled channels in its product, stays fp32.
TEST(AdapterPasses, Bf16PairsIntoAnUpscaledInput) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 16, 8, 8});
  set_io(g.add_input(), "xl", {1, 16, 4, 4});
  add_conv(g, "xl", "u", 16, 96, 1);
  add_conv(g, "x", "c3", 16, 3, 1);
  add_floats(g, "m_w", {96, 99, 1, 1}, std::vector<float>(96 * 99, 0.1f));
  auto& m = add_node(g, "Conv", {"c3", "m_w", "u"}, {"m"});
  add_ints(m, kernel::kConvInputsAttr, {0, -1, 0, -1});
  add_ints(m, kernel::kConvUpscaleAttr, {1, 2});
  add_conv(g, "m", "n", 96, 96, 1);
  add_conv(g, "xl", "c3l", 16, 3, 1);
  add_conv(g, "xl", "u2", 16, 96, 1);
  add_floats(g, "m2_w", {96, 115, 1, 1}, std::vector<float>(96 * 115, 0.1f));
  auto& m2 = add_node(g, "Conv", {"x", "m2_w", "c3l", "u2"}, {"m2"});
  add_ints(m2, kernel::kConvInputsAttr, {0, -1, 0, -1, 0, -1});
  add_ints(m2, kernel::kConvUpscaleAttr, {1, 2, 2});
  set_io(g.add_output(), "n", {1, 96, 8, 8});
  set_io(g.add_output(), "m2", {1, 96, 8, 8});
  for (const char* o : {"c3", "c3l"}) set_io(g.add_output(), o, {1, 3, 8, 8});  // stay fp32
  const auto line = bf16_pairs_of(g);
  if (!line) return;  // no pairs on this CPU: checked to leave the graph as it is
  EXPECT_EQ(*line,
            "1 tensors between convolutions as bf16 channel pairs (1 convolutions read them, 0 of them fp32 "
            "depthwise, 0 as their fused Add's skip; 0 written by fp32 depthwise layers)");
  const auto by_output = nodes_by_output(g);
  EXPECT_EQ(attr_int(*by_output.at("u"), kernel::kConvPairsOutAttr, 0), 1);
  EXPECT_EQ(ints_of(*by_output.at("m"), kernel::kConvPairsInAttr), (std::vector<int64_t>{0, 1}));
  EXPECT_FALSE(has_attr(*by_output.at("m"), kernel::kConvPairsOutAttr));
  EXPECT_FALSE(has_attr(*by_output.at("n"), kernel::kConvPairsInAttr));
  EXPECT_FALSE(has_attr(*by_output.at("u2"), kernel::kConvPairsOutAttr));
  EXPECT_FALSE(has_attr(*by_output.at("m2"), kernel::kConvPairsInAttr));
}

// C3k2 / C2f in small: cv1 -> Split -> a bottleneck (its Add fused) -> Concat -> cv2. Plus what must stay:
// a Concat with two consumers, a Split one of whose parts a Relu reads, a Concat that is a graph output.
TEST(AdapterPasses, ReadConcatsAndSplitsInPlace) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 8, 16, 16});
  add_conv(g, "x", "c1", 8, 8, 1);
  add_node(g, kernel::kSiLUOpType, {"c1"}, {"s1"});
  const auto split = [&](const std::string& in, const std::string& a, const std::string& b) {
    auto& n = add_node(g, "Split", {in}, {a, b});
    add_ints(n, "split", {4, 4});
    add_int(n, "axis", 1);
  };
  split("s1", "p0", "p1");
  add_conv(g, "p1", "m", 4, 4, 1);
  add_node(g, kernel::kSiLUOpType, {"m"}, {"sm"});
  add_node(g, "Add", {"p1", "sm"}, {"y"});  // the bottleneck's skip: a Split part
  add_int(add_node(g, "Concat", {"p0", "p1", "y"}, {"cat"}), "axis", 1);
  add_conv(g, "cat", "c2", 12, 8, 1);
  // Stay: "cat2" has two consumers; the Split's "q1" goes to a Relu too; "cat3" is a graph output.
  add_int(add_node(g, "Concat", {"c2", "x"}, {"cat2"}), "axis", 1);
  add_conv(g, "cat2", "d1", 16, 8, 1);
  add_conv(g, "cat2", "d2", 16, 8, 1);
  split("d1", "q0", "q1");
  add_conv(g, "q0", "e", 4, 4, 1);
  add_node(g, "Relu", {"q1"}, {"r"});
  add_int(add_node(g, "Concat", {"d2", "e"}, {"cat3"}), "axis", 1);
  set_io(g.add_output(), "r", {1, 4, 16, 16});
  set_io(g.add_output(), "cat3", {1, 12, 16, 16});
  ASSERT_TRUE(mark_convolutions(g, context()).has_value());
  if (!kernel::convolution_fusion_enabled()) {
    expect_untouched(read_concats_and_splits_in_place, g);
    return;
  }
  ASSERT_TRUE(fuse_residual_adds(g, context()).has_value());
  EXPECT_EQ(read_concats_and_splits_in_place(g, context()),
            "1 Concat and 1 channel Split nodes -> read in place by their convolutions");
  EXPECT_EQ(op_types(g), (Ops{"Conv", kernel::kSiLUOpType, "Conv", "Conv", "Concat", "Conv", "Conv", "Split",
                              "Conv", "Relu", "Concat"}));
  // The bottleneck reads channels 4..7 of cv1's output as its input and as its skip.
  const auto& m = g.node(2);
  ASSERT_EQ(m.input_size(), 3);
  EXPECT_EQ(m.input(0), "s1");
  EXPECT_EQ(m.input(1), "m_w");
  EXPECT_EQ(m.input(2), "s1");
  EXPECT_EQ(ints_of(m, kernel::kConvInputsAttr), (std::vector<int64_t>{4, 4, 4, 4}));
  // cv2 reads cv1's output whole (the Split's two parts, adjacent, merged) and the bottleneck's.
  const auto& c2 = g.node(3);
  ASSERT_EQ(c2.input_size(), 3);
  EXPECT_EQ(c2.input(0), "s1");
  EXPECT_EQ(c2.input(1), "c2_w");
  EXPECT_EQ(c2.input(2), "y");
  EXPECT_EQ(ints_of(c2, kernel::kConvInputsAttr), (std::vector<int64_t>{0, 8, 0, -1}));
  EXPECT_EQ(c2.output(0), "c2");
  // Run again: nothing left that it may rewrite.
  expect_untouched(read_concats_and_splits_in_place, g);
}

// A neck in small: Upsample (nearest, asymmetric, floor, x2) -> Concat with a full-size tensor -> 1x1 cv1.
// Plus what must stay: an upsampling whose output a Relu reads too, one into a 3x3 convolution, one by 1.5,
// and one that a 1x1 reads alone (no input at the output's size).
TEST(AdapterPasses, FoldUpsamplingIntoTheOneByOneAfterIt) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 8, 8, 8});
  set_io(g.add_input(), "big", {1, 4, 16, 16});
  add_floats(g, "roi", {0}, {});
  add_floats(g, "x2", {4}, {1.f, 1.f, 2.f, 2.f});
  add_floats(g, "x15", {4}, {1.f, 1.f, 1.5f, 1.5f});
  const auto upsample = [&](const std::string& in, const std::string& out, const char* scales) {
    auto& n = add_node(g, "Resize", {in, "roi", scales}, {out});
    for (auto [k, v] : {std::pair{"mode", "nearest"},
                        {"coordinate_transformation_mode", "asymmetric"},
                        {"nearest_mode", "floor"}}) {
      auto* a = n.add_attribute();
      a->set_name(k);
      a->set_type(ox::AttributeProto::STRING);
      a->set_s(v);
    }
  };
  upsample("x", "u", "x2");
  add_int(add_node(g, "Concat", {"u", "big"}, {"cat"}), "axis", 1);
  add_conv(g, "cat", "cv1", 12, 8, 1);
  // Stay: "u2" is read by a Relu too; "u3" goes into a 3x3; "u4" is upscaled by 1.5; "u5" is read alone.
  upsample("cv1", "u2", "x2");
  add_int(add_node(g, "Concat", {"u2", "big"}, {"cat2"}), "axis", 1);
  add_conv(g, "cat2", "d", 12, 4, 1);
  add_node(g, "Relu", {"u2"}, {"r"});
  upsample("x", "u3", "x2");
  add_int(add_node(g, "Concat", {"u3", "big"}, {"cat3"}), "axis", 1);
  add_floats(g, "k3_w", {4, 12, 3, 3}, std::vector<float>(4 * 12 * 9, 0.1f));
  add_ints(add_node(g, "Conv", {"cat3", "k3_w"}, {"k3"}), "pads", {1, 1, 1, 1});
  upsample("x", "u4", "x15");
  add_conv(g, "u4", "e", 8, 4, 1);
  upsample("x", "u5", "x2");
  add_conv(g, "u5", "f", 8, 4, 1);
  for (const char* o : {"d", "r", "k3", "e", "f"}) set_io(g.add_output(), o, {});
  ASSERT_TRUE(mark_convolutions(g, context()).has_value());
  ASSERT_TRUE(read_concats_and_splits_in_place(g, context()).has_value() ||
              !kernel::convolution_fusion_enabled());
  ASSERT_TRUE(mark_resizes(g, context()).has_value());
  if (!kernel::convolution_fusion_enabled()) {
    expect_untouched(fold_upsampling, g);
    return;
  }
  EXPECT_EQ(fold_upsampling(g, context()),
            "1 nearest Resize nodes -> read at their input's size by the 1x1 after them");
  EXPECT_EQ(op_types(g),
            (Ops{"Conv", "Resize", "Conv", "Relu", "Resize", "Conv", "Resize", "Conv", "Resize", "Conv"}));
  // cv1 reads x itself, upscaled 2x, and "big" at its size.
  const auto& cv1 = g.node(0);
  ASSERT_EQ(cv1.input_size(), 3);
  EXPECT_EQ(cv1.input(0), "x");
  EXPECT_EQ(cv1.input(1), "cv1_w");
  EXPECT_EQ(cv1.input(2), "big");
  EXPECT_EQ(ints_of(cv1, kernel::kConvUpscaleAttr), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ints_of(cv1, kernel::kConvInputsAttr), (std::vector<int64_t>{0, -1, 0, -1}));
  // Run again: nothing left that it may fold.
  expect_untouched(fold_upsampling, g);
}

// SPPF in small: three marked 5x5 pools in a row, each output also read by a Concat -> one chain node. What
// stays: a lone pool, and a 3x3 after a 5x5 (another window).
TEST(AdapterPasses, ChainMaxPoolsMakesSppfsPoolsOneNode) {
  ox::GraphProto g;
  set_io(g.add_input(), "x", {1, 8, 16, 16});
  const auto pool = [&](const std::string& in, const std::string& out, int64_t k) {
    auto& n = add_node(g, "MaxPool", {in}, {out});
    add_ints(n, "kernel_shape", {k, k});
    add_ints(n, "pads", {k / 2, k / 2, k / 2, k / 2});
    add_ints(n, "strides", {1, 1});
  };
  pool("x", "m1", 5);
  pool("m1", "m2", 5);
  pool("m2", "m3", 5);
  add_int(add_node(g, "Concat", {"x", "m1", "m2", "m3"}, {"cat"}), "axis", 1);
  pool("x", "lone", 5);
  pool("lone", "other", 3);
  for (const char* o : {"cat", "other"}) set_io(g.add_output(), o, {});
  ASSERT_TRUE(mark_max_pools(g, context()).has_value());
  EXPECT_EQ(chain_max_pools(g, context()), "3 of them in 1 chain(s) -> one AitwMaxPoolChain each");
  EXPECT_EQ(op_types(g), (Ops{kernel::kMaxPoolChainOpType, "Concat", "MaxPool", "MaxPool"}));
  const auto& c = g.node(0);
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0), "x");
  ASSERT_EQ(c.output_size(), 3);
  EXPECT_EQ(c.output(0), "m1");
  EXPECT_EQ(c.output(1), "m2");
  EXPECT_EQ(c.output(2), "m3");
  EXPECT_EQ(attr_int(c, kernel::kMaxPoolMark, 0), 5);
  EXPECT_EQ(attr_int(c, "outputs", 0), 3);
  expect_untouched(chain_max_pools, g);
}

// A C3k2's bottleneck (fuse_residual_adds' and read_concats_and_splits_in_place's marks): h's second half is
// the bottleneck's input and its fused Add's skip, and h, with the bottleneck's output, the last 1x1's
// Concat. With PassContext::residual_pairs h is written as pairs and read as pairs everywhere, the skip
// included (its flag after the data inputs'); the residual convolution still writes fp32. Without it h stays
// fp32. A skip from an odd channel (h2), or one a depthwise convolution adds (fp32: s), keeps its tensor
// fp32.
TEST(AdapterPasses, Bf16PairsAsAFusedAddsSkip) {
  const auto build = [](ox::GraphProto& g) {
    set_io(g.add_input(), "x", {1, 16, 8, 8});
    const auto residual = [&](const std::vector<std::string>& inputs, const std::string& out, int cin,
                              int cout, int k, int group, const std::vector<int64_t>& ranges) {
      add_floats(g, out + "_w", {cout, cin / group, k, k},
                 std::vector<float>(cout * cin / group * k * k, 0.1f));
      std::vector<std::string> in{inputs[0], out + "_w"};
      in.insert(in.end(), inputs.begin() + 1, inputs.end());
      auto& n = add_node(g, "Conv", in, {out});
      add_ints(n, "kernel_shape", {k, k});
      if (k == 3) add_ints(n, "pads", {1, 1, 1, 1});
      if (group > 1) add_int(n, "group", group);
      add_int(n, kernel::kConvResidualMark, 1);
      auto* a = n.add_attribute();
      a->set_name(kernel::kConvActivationAttr);
      a->set_type(ox::AttributeProto::STRING);
      a->set_s("silu");
      add_ints(n, kernel::kConvInputsAttr, ranges);
    };
    add_conv(g, "x", "h", 16, 64, 1);
    add_floats(g, "b1_w", {32, 32, 1, 1}, std::vector<float>(32 * 32, 0.1f));
    add_ints(add_node(g, "Conv", {"h", "b1_w"}, {"b1"}), kernel::kConvInputsAttr, {32, -1});
    residual({"b1", "h"}, "b2", 32, 32, 3, 1, {0, -1, 32, -1});
    add_floats(g, "cv2_w", {64, 96, 1, 1}, std::vector<float>(64 * 96, 0.1f));
    add_ints(add_node(g, "Conv", {"h", "cv2_w", "b2"}, {"cv2"}), kernel::kConvInputsAttr, {0, -1, 0, -1});
    add_conv(g, "x", "h2", 16, 64, 1);
    residual({"x", "h2"}, "b3", 16, 32, 1, 1, {0, -1, 31, 32});
    add_conv(g, "x", "s", 16, 32, 1);
    residual({"s", "s"}, "d", 32, 32, 3, 32, {0, -1, 0, -1});
    add_conv(g, "s", "e", 32, 32, 1);
    for (const char* o : {"cv2", "b3"}) set_io(g.add_output(), o, {1, 64, 8, 8});
    for (const char* o : {"d", "e"}) set_io(g.add_output(), o, {1, 32, 8, 8});
  };
  ox::GraphProto g, off;
  build(g);
  build(off);
  const auto line = bf16_pairs_of(g);
  if (!line) return;  // no pairs on this CPU: checked to leave the graph as it is
  EXPECT_EQ(*line,
            "2 tensors between convolutions as bf16 channel pairs (3 convolutions read them, 0 of them fp32 "
            "depthwise, 1 as their fused Add's skip; 0 written by fp32 depthwise layers)");
  const auto by_output = nodes_by_output(g);
  for (const char* t : {"h", "b1"})
    EXPECT_EQ(attr_int(*by_output.at(t), kernel::kConvPairsOutAttr, 0), 1) << t;
  EXPECT_EQ(ints_of(*by_output.at("b1"), kernel::kConvPairsInAttr), (std::vector<int64_t>{1}));
  EXPECT_EQ(ints_of(*by_output.at("b2"), kernel::kConvPairsInAttr), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(ints_of(*by_output.at("cv2"), kernel::kConvPairsInAttr), (std::vector<int64_t>{1, 0}));
  for (const char* t : {"b2", "cv2", "h2", "b3", "s", "d", "e"})
    EXPECT_FALSE(has_attr(*by_output.at(t), kernel::kConvPairsOutAttr)) << t;
  for (const char* t : {"b3", "d", "e"})
    EXPECT_FALSE(has_attr(*by_output.at(t), kernel::kConvPairsInAttr)) << t;
  // Off: h stays fp32, and the bottleneck's inner tensor b1 alone is pairs.
  PassContext no_skips = bf16_context();
  no_skips.residual_pairs = false;
  ASSERT_TRUE(mark_convolutions(off, no_skips).has_value());
  EXPECT_EQ(pass_bf16_pairs(off, no_skips),
            "1 tensors between convolutions as bf16 channel pairs (1 convolutions read them, 0 of them fp32 "
            "depthwise, 0 as their fused Add's skip; 0 written by fp32 depthwise layers)");
  const auto off_nodes = nodes_by_output(off);
  EXPECT_FALSE(has_attr(*off_nodes.at("h"), kernel::kConvPairsOutAttr));
  EXPECT_EQ(ints_of(*off_nodes.at("b2"), kernel::kConvPairsInAttr), (std::vector<int64_t>{1}));
}

}  // namespace
}  // namespace aitw::model::detail
