#include "aitw/model/onnx_model.hpp"
#include "aitw/testing/mats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "onnx.pb.h"

namespace aitw::model {
namespace {

namespace ox = aitw::onnx;

const std::string kShared = AITW_SHARED_DIR;
const std::string kYolo11 = kShared + "/models/yolo11n.onnx";
const std::string kYolov8 = kShared + "/models/yolov8n.onnx";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

cv::dnn::Net load_net(const AdaptedGraph& g, bool fusion = true) {
  cv::dnn::Net net = model::load_net(g, "test");
  net.enableFusion(fusion);
  return net;
}

std::vector<cv::Mat> forward(cv::dnn::Net& net, const cv::Mat& blob, const std::vector<std::string>& outs) {
  net.setInput(blob);
  std::vector<cv::Mat> r;
  net.forward(r, outs);
  return r;
}

// bus.jpg letterboxed into 640x640 the simple way (the test needs realistic activations, not exact parity).
cv::Mat bus_blob(int h, int w) {
  cv::Mat img = cv::imread(kShared + "/datasets/images/bus.jpg");
  return cv::dnn::blobFromImage(img, 1.0 / 255, cv::Size(w, h), cv::Scalar(), true, false);
}

double max_abs_diff(const std::vector<cv::Mat>& a, const std::vector<cv::Mat>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, aitw::testing::max_abs_diff(a[i], b[i]));
  return m;
}

// --- small synthetic graphs -------------------------------------------------------------------------

void add_conv(ox::GraphProto& g, const std::string& in, const std::string& out, int cin, int cout, int stride,
              std::mt19937& rng) {
  std::normal_distribution<float> d(0.f, 0.3f);
  auto* w = g.add_initializer();
  w->set_name(out + "_w");
  w->set_data_type(ox::TensorProto::FLOAT);
  for (int v : {cout, cin, 1, 1}) w->add_dims(v);
  for (int i = 0; i < cout * cin; ++i) w->add_float_data(d(rng));
  auto* n = g.add_node();
  n->set_op_type("Conv");
  n->add_input(in);
  n->add_input(w->name());
  n->add_output(out);
  auto* a = n->add_attribute();
  a->set_name("strides");
  a->set_type(ox::AttributeProto::INTS);
  a->add_ints(stride);
  a->add_ints(stride);
  auto* k = n->add_attribute();
  k->set_name("kernel_shape");
  k->set_type(ox::AttributeProto::INTS);
  k->add_ints(1);
  k->add_ints(1);
}

void add_node(ox::GraphProto& g, const std::string& op, std::vector<std::string> in, const std::string& out,
              int axis = INT32_MIN) {
  auto* n = g.add_node();
  n->set_op_type(op);
  for (auto& i : in) n->add_input(i);
  n->add_output(out);
  if (axis != INT32_MIN) {
    auto* a = n->add_attribute();
    a->set_name("axis");
    a->set_type(ox::AttributeProto::INT);
    a->set_i(axis);
  }
}

void set_io(ox::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(ox::TensorProto::FLOAT);
  for (auto d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

// A two-level detector in the Ultralytics head layout (reg_max 4, 2 classes) at 64x64, opaque names.
std::string tiny_detector_bytes() {
  std::mt19937 rng(1);
  ox::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(12);
  auto& g = *m.mutable_graph();
  set_io(g.add_input(), "x", {1, 3, 64, 64});
  add_conv(g, "x", "a", 3, 8, 8, rng);  // stride 8
  add_conv(g, "a", "b", 8, 8, 2, rng);  // stride 16
  const char* feats[2] = {"a", "b"};
  std::vector<std::string> flat;
  for (int l = 0; l < 2; ++l) {
    // (Appended, not "q" + to_string: GCC 12's -Wrestrict misfires on that concatenation in this unity file.)
    std::string p = "q";
    p += std::to_string(l);
    add_conv(g, feats[l], p + "box", 8, 16, 1, rng);
    add_conv(g, feats[l], p + "cls", 8, 2, 1, rng);
    add_node(g, "Concat", {p + "box", p + "cls"}, p + "cat", 1);
    auto* shape = g.add_initializer();
    shape->set_name(p + "shape");
    shape->set_data_type(ox::TensorProto::INT64);
    shape->add_dims(3);
    for (int64_t v : {int64_t{1}, int64_t{18}, int64_t{-1}}) shape->add_int64_data(v);
    add_node(g, "Reshape", {p + "cat", p + "shape"}, p + "flat");
    flat.push_back(p + "flat");
  }
  add_node(g, "Concat", flat, "y", 2);
  set_io(g.add_output(), "y", {1, 18, 80});
  return m.SerializeAsString();
}

std::string not_a_detector_bytes() {
  std::mt19937 rng(2);
  ox::ModelProto m;
  m.add_opset_import()->set_version(12);
  auto& g = *m.mutable_graph();
  set_io(g.add_input(), "x", {1, 3, 32, 32});
  add_conv(g, "x", "c", 3, 4, 2, rng);
  add_node(g, "Sigmoid", {"c"}, "y");
  set_io(g.add_output(), "y", {1, 4, 16, 16});
  return m.SerializeAsString();
}

void expect_model_error(const std::string& bytes, const std::string& label, const std::string& needle) {
  try {
    OnnxModel::from_bytes(bytes, label);
    FAIL() << "expected ModelError containing '" << needle << "'";
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model '" + label + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

}  // namespace

TEST(ModelAdapter, FindsYolo11HeadAndMetadata) {
  const auto m = OnnxModel::load(kYolo11);
  // Independent reference: the checksum recorded in shared/SOURCES.md.
  EXPECT_EQ(m.sha256(), "72063619bbcdbd89a3d8398c2e99a533f51f2d0d48f788c7475157697b7baa8b");
  ASSERT_EQ(m.levels().size(), 3u);
  EXPECT_EQ(m.levels()[0].stride, 8);
  EXPECT_EQ(m.levels()[1].stride, 16);
  EXPECT_EQ(m.levels()[2].stride, 32);
  EXPECT_EQ(m.head_layout().reg_max, 16);
  EXPECT_EQ(m.head_layout().num_classes, 80);
  EXPECT_TRUE(m.has_attention());
  EXPECT_EQ(m.metadata().names_source, "metadata_props");
  ASSERT_EQ(m.metadata().class_names.size(), 80u);
  EXPECT_EQ(m.metadata().class_names[0], "person");
  EXPECT_EQ(m.metadata().class_names[79], "toothbrush");
  EXPECT_EQ(m.metadata().native_input, (InputSize{640, 640}));
  EXPECT_EQ(m.metadata().max_stride, 32);
}

TEST(ModelAdapter, FindsYolov8HeadWithoutAttention) {
  const auto m = OnnxModel::load(kYolov8);
  ASSERT_EQ(m.levels().size(), 3u);
  EXPECT_EQ(m.head_layout().channels(), 144);
  EXPECT_FALSE(m.has_attention());
  const auto g = m.adapt({480, 640});
  // YOLOv8 has no attention block, so there is no spatial Reshape to rewrite.
  EXPECT_NE(g.summary().find("0 spatial Reshape"), std::string::npos) << g.summary();
  auto net = load_net(g);
  const auto outs = forward(net, bus_blob(480, 640), g.output_names);
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[2].size[2], 15);
  EXPECT_EQ(outs[2].size[3], 20);
}

TEST(ModelAdapter, StockGraphFailsInOpenCvWithoutTheRewrite) {
  // Why the adapter exists: OpenCV 4.6 throws in forward() on the stock head (shared/SOURCES.md).
  const std::string bytes = read_file(kYolo11);
  cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  net.setInput(bus_blob(640, 640));
  EXPECT_THROW(net.forward(), cv::Exception);
}

TEST(ModelAdapter, RetargetsYolo11ToRectangularInput) {
  const auto m = OnnxModel::load(kYolo11);
  const auto g = m.adapt({480, 640});
  EXPECT_NE(g.summary().find("3 spatial Reshape constants"), std::string::npos) << g.summary();
  EXPECT_LT(g.nodes_after, g.nodes_before);
  auto net = load_net(g);
  const auto outs = forward(net, bus_blob(480, 640), g.output_names);
  ASSERT_EQ(outs.size(), 3u);
  const int expect_hw[3][2] = {{60, 80}, {30, 40}, {15, 20}};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(outs[i].dims, 4);
    EXPECT_EQ(outs[i].size[1], 144);
    EXPECT_EQ(outs[i].size[2], expect_hw[i][0]);
    EXPECT_EQ(outs[i].size[3], expect_hw[i][1]);
  }
}

TEST(ModelAdapter, RejectsSizesThatAreNotStrideMultiples) {
  const auto m = OnnxModel::load(kYolo11);
  EXPECT_THROW(m.adapt({480, 630}), ModelError);
  EXPECT_THROW(m.adapt({0, 640}), ModelError);
}

TEST(ModelAdapter, AttentionFixMatchesTheUnfusedGraphWithFusionOn) {
  const auto m = OnnxModel::load(kYolo11);
  const cv::Mat blob = bus_blob(640, 640);
  // The fix is for the graph run with OpenCV's own layers (aitw's AitwAttention replaces the chain).
  AdaptOptions with_fix, no_fix;
  with_fix.custom_layers = no_fix.custom_layers = false;
  no_fix.fix_attention = false;
  const auto fixed = m.adapt({640, 640}, with_fix);
  const auto plain = m.adapt({640, 640}, no_fix);
  EXPECT_NE(fixed.summary().find("attention scale moved"), std::string::npos);

  auto reference_net = load_net(plain, /*fusion=*/false);  // slow but correct
  auto fixed_net = load_net(fixed, /*fusion=*/true);
  auto buggy_net = load_net(plain, /*fusion=*/true);
  const auto reference = forward(reference_net, blob, plain.output_names);
  const auto ours = forward(fixed_net, blob, fixed.output_names);
  const auto buggy = forward(buggy_net, blob, plain.output_names);
  EXPECT_LT(max_abs_diff(ours, reference), 2e-3);
  // The bug the fix exists for: if this stops failing, OpenCV fixed its fusion and the rewrite can go.
  EXPECT_GT(max_abs_diff(buggy, reference), 0.1);
}

TEST(ModelAdapter, FindsTheHeadByStructureNotNames) {
  // Rename every node and intermediate tensor to opaque names, as another exporter might.
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(read_file(kYolo11)));
  auto& g = *m.mutable_graph();
  std::map<std::string, std::string> rename;
  auto opaque = [&](const std::string& s) {
    if (s.empty() || s == "images") return s;
    auto it = rename.find(s);
    if (it != rename.end()) return it->second;
    std::string name = std::to_string(rename.size());
    name.insert(0, 1, 't');  // not "t" + ...: GCC 12 warns falsely (-Wrestrict) on that form
    return rename[s] = name;
  };
  for (auto& n : *g.mutable_node()) {
    n.set_name(std::to_string(rename.size()).insert(0, 1, 'n'));
    for (auto& s : *n.mutable_input()) s = opaque(s);
    for (auto& s : *n.mutable_output()) s = opaque(s);
  }
  for (auto& t : *g.mutable_initializer()) t.set_name(opaque(t.name()));
  for (auto& o : *g.mutable_output()) o.set_name(opaque(o.name()));

  const auto renamed = OnnxModel::from_bytes(m.SerializeAsString(), "renamed.onnx");
  const auto original = OnnxModel::load(kYolo11);
  ASSERT_EQ(renamed.levels().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(renamed.levels()[i].stride, original.levels()[i].stride);
    EXPECT_EQ(renamed.levels()[i].tensor, rename[original.levels()[i].tensor]);
  }
  EXPECT_TRUE(renamed.has_attention());
}

TEST(ModelAdapter, SyntheticTwoLevelDetector) {
  const auto m = OnnxModel::from_bytes(tiny_detector_bytes(), "tiny.onnx");
  ASSERT_EQ(m.levels().size(), 2u);
  EXPECT_EQ(m.levels()[0].stride, 8);
  EXPECT_EQ(m.levels()[1].stride, 16);
  EXPECT_EQ(m.head_layout().reg_max, 4);
  EXPECT_EQ(m.head_layout().num_classes, 2);
  EXPECT_EQ(m.metadata().max_stride, 16);
  ASSERT_EQ(m.metadata().class_names.size(), 2u);  // generated: the graph has no names
  for (InputSize size : {InputSize{64, 64}, InputSize{32, 96}}) {
    const auto g = m.adapt(size);
    auto net = load_net(g);
    const auto outs =
        forward(net, cv::Mat(std::vector<int>{1, 3, size.height, size.width}, CV_32F, cv::Scalar(0.5)),
                g.output_names);
    ASSERT_EQ(outs.size(), 2u);
    EXPECT_EQ(outs[0].size[1], 18);
    EXPECT_EQ(outs[0].size[2], size.height / 8);
    EXPECT_EQ(outs[1].size[3], size.width / 16);
  }
}

TEST(ModelAdapter, PreservesFieldsItDoesNotKnow) {
  // Fields outside aitw's ONNX subset (newer IR fields, exporters' extensions) must survive the rewrite.
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  m.mutable_graph()->GetReflection()->MutableUnknownFields(m.mutable_graph())->AddVarint(999, 4242);
  m.mutable_graph()
      ->mutable_node(0)
      ->GetReflection()
      ->MutableUnknownFields(m.mutable_graph()->mutable_node(0))
      ->AddLengthDelimited(998, "exporter-extension");
  const auto g = OnnxModel::from_bytes(m.SerializeAsString(), "ext.onnx").adapt({64, 64});
  ox::ModelProto out;
  ASSERT_TRUE(out.ParseFromString(g.onnx_bytes));
  const auto& gu = out.graph().GetReflection()->GetUnknownFields(out.graph());
  ASSERT_EQ(gu.field_count(), 1);
  EXPECT_EQ(gu.field(0).number(), 999);
  EXPECT_EQ(gu.field(0).varint(), 4242u);
  const auto& nu = out.graph().node(0).GetReflection()->GetUnknownFields(out.graph().node(0));
  ASSERT_EQ(nu.field_count(), 1);
  EXPECT_EQ(nu.field(0).length_delimited(), "exporter-extension");
}

TEST(ModelAdapter, UsesAndChecksUltralyticsMetadata) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  auto add_meta = [&](const char* k, const char* v) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  };
  add_meta("names", "{0: 'cat', 1: 'dog'}");
  add_meta("stride", "16");
  add_meta("imgsz", "[64, 64]");
  const auto ok = OnnxModel::from_bytes(m.SerializeAsString(), "meta.onnx");
  EXPECT_EQ(ok.metadata().class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ok.metadata().names_source, "metadata_props");
  m.mutable_metadata_props(1)->set_value("32");  // contradicts the head (coarsest level at stride 16)
  expect_model_error(m.SerializeAsString(), "meta.onnx", "stride 32");
}

// Hostile graphs from a review: each crashed (SIGFPE, SIGSEGV) before the adapter checked them.
TEST(ModelAdapter, RejectsAbsurdStridesInsteadOfDividingByZero) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.output(0) == "q1box")  // the stride-16 level's box conv gets a 2^32 stride
      for (auto& a : *n.mutable_attribute())
        if (a.name() == "strides")
          for (int i = 0; i < a.ints_size(); ++i) a.set_ints(i, int64_t{1} << 32);
  // The bad level is ignored; what is left (one level) loads, or the file is rejected: never a crash.
  try {
    const auto model = OnnxModel::from_bytes(m.SerializeAsString(), "stride.onnx");
    for (const auto& lv : model.levels()) EXPECT_GT(lv.stride, 0);
    (void)model.adapt({64, 64});
  } catch (const ModelError&) {
  }
}

TEST(ModelAdapter, RejectsConstantsWhoseDataDoesNotMatchTheirShape) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  auto& w = *m.mutable_graph()->mutable_initializer(0);
  w.set_dims(0, 4194304);  // 4M output channels declared, 24 floats present
  expect_model_error(m.SerializeAsString(), "short.onnx", "its shape needs");
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  auto& w2 = *m.mutable_graph()->mutable_initializer(0);
  w2.clear_float_data();
  w2.set_raw_data(std::string(40, '\0'));  // raw bytes of the wrong size
  expect_model_error(m.SerializeAsString(), "raw.onnx", "holds 40 bytes");
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  m.mutable_graph()->mutable_initializer(0)->set_dims(1, int64_t{1} << 40);  // overflowing element count
  expect_model_error(m.SerializeAsString(), "huge.onnx", "dims");
}

// Found by fuzz_onnx: a class-branch weight [2^28, 0, 1, 1] holds no data, so it passed the size check,
// and its first dim made the loader generate 2^28 class names (gigabytes) from a 2.5 KB file.
TEST(ModelAdapter, RejectsEmptyHeadWeightsAndAbsurdClassCounts) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  for (auto& w : *m.mutable_graph()->mutable_initializer())
    if (w.name() == "q0cls_w" || w.name() == "q1cls_w") {
      w.clear_float_data();
      w.clear_dims();
      for (std::int64_t d : {std::int64_t{1} << 28, std::int64_t{0}, std::int64_t{1}, std::int64_t{1}})
        w.add_dims(d);
    }
  expect_model_error(m.SerializeAsString(), "empty.onnx", "Detect head not found");
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  for (auto& w : *m.mutable_graph()->mutable_initializer())
    if (w.name() == "q0cls_w" || w.name() == "q1cls_w") {
      w.clear_float_data();
      w.set_dims(0, 100001);  // [100001, 8, 1, 1], with its data
      w.set_raw_data(std::string(100001 * 8 * sizeof(float), '\0'));
    }
  expect_model_error(m.SerializeAsString(), "classes.onnx", "100001 classes");
}

// Found by fuzz_onnx: the attention matcher read the second input of a MatMul that has only one (and the
// first output of nodes that have none). Such a chain is left alone.
TEST(ModelAdapter, AttentionLookalikesWithMissingInputsAreSkipped) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  auto& g = *m.mutable_graph();
  auto* scale = g.add_initializer();
  scale->set_name("scale");
  scale->set_data_type(ox::TensorProto::FLOAT);
  scale->add_float_data(0.5f);
  auto transpose = [&](const std::string& in, const std::string& out) {
    add_node(g, "Transpose", {in}, out);
    auto* perm = g.mutable_node(g.node_size() - 1)->add_attribute();
    perm->set_name("perm");
    perm->set_type(ox::AttributeProto::INTS);
    for (int p : {0, 1, 3, 2}) perm->add_ints(p);
  };
  transpose("a", "qT");
  add_node(g, "MatMul", {"qT", "a"}, "qk");
  add_node(g, "Mul", {"qk", "scale"}, "qks");
  add_node(g, "Softmax", {"qks"}, "attn", -1);
  transpose("attn", "attnT");
  add_node(g, "MatMul", {"attnT"}, "o");  // one input
  set_io(g.add_output(), "o", {1, 1, 8, 8});
  const auto model = OnnxModel::from_bytes(m.SerializeAsString(), "lookalike.onnx");
  EXPECT_TRUE(model.has_attention());
  AdaptOptions stock_head;
  stock_head.cut_head = false;  // keeps the chain alive (it feeds a graph output)
  const auto adapted = model.adapt({64, 64}, stock_head);
  EXPECT_EQ(adapted.summary().find("AitwAttention"), std::string::npos) << adapted.summary();
}

TEST(ModelAdapter, NodesWithMissingInputsDoNotCrash) {
  ox::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(tiny_detector_bytes()));
  auto& g = *m.mutable_graph();
  auto* up = g.add_node();  // an Upsample with no scales input, and a Transpose with no input at all
  up->set_op_type("Upsample");
  up->add_input("a");
  up->add_output("u");
  auto* tr = g.add_node();
  tr->set_op_type("Transpose");
  tr->add_output("t");
  try {
    OnnxModel::from_bytes(m.SerializeAsString(), "missing.onnx").adapt({64, 64});
  } catch (const ModelError&) {
  }
}

TEST(ModelAdapter, RejectsAGraphWithoutDetectHead) {
  expect_model_error(not_a_detector_bytes(), "classifier.onnx", "Detect head not found");
}

TEST(ModelAdapter, RejectsTruncatedFilesCleanly) {
  const std::string bytes = read_file(kYolo11);
  for (double frac : {0.0001, 0.01, 0.3, 0.5, 0.9, 0.999}) {
    const std::string cut = bytes.substr(0, static_cast<std::size_t>(bytes.size() * frac));
    EXPECT_THROW(OnnxModel::from_bytes(cut, "truncated.onnx"), ModelError) << "fraction " << frac;
  }
}

TEST(ModelAdapter, RejectsFilesThatAreNotOnnx) {
  expect_model_error(read_file(kShared + "/datasets/images/bus.jpg"), "bus.jpg", "not an ONNX model");
  expect_model_error("", "empty.onnx", "empty");
  expect_model_error(std::string(1000, '\0'), "zeros.onnx", "");
  try {
    OnnxModel::load("/nonexistent/model.onnx");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

}  // namespace aitw::model
