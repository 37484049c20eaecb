// aitw's custom DNN layers against the exact OpenCV layers they replace, on real activations of YOLO11n
// (bus.jpg at 480x640), and the whole network with and without them.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/kernel/preprocess.hpp"
#include "aitw/model/onnx_model.hpp"
#include "aitw/testing/mats.hpp"
#include "onnx.pb.h"

namespace aitw::model {
namespace {

namespace ox = aitw::onnx;
const std::string kShared = AITW_SHARED_DIR;

cv::Mat bus_blob(InputSize size) {
  const cv::Mat img = cv::imread(kShared + "/datasets/images/bus.jpg");
  const auto lb = kernel::letterbox_params(img.cols, img.rows, size.width, size.height);
  cv::Mat blob(std::vector<int>{1, 3, size.height, size.width}, CV_32F);
  kernel::PreprocessPlan plan;
  plan.prepare(lb);
  kernel::preprocess_letterbox({img.data, img.cols, img.rows, static_cast<std::ptrdiff_t>(img.step)}, plan,
                               blob.ptr<float>());
  return blob;
}

// The stock graph adapted with OpenCV's own layers: the source of real activations and the reference.
struct Reference {
  OnnxModel model = OnnxModel::load(kShared + "/models/yolo11n.onnx");
  AdaptedGraph graph;
  cv::dnn::Net net;
  ox::ModelProto proto;
  Reference() {
    AdaptOptions opencv_layers;
    opencv_layers.custom_layers = false;
    opencv_layers.fix_attention = false;  // the unfused reference below needs the original chain
    graph = model.adapt({480, 640}, opencv_layers);
    proto.ParseFromString(graph.onnx_bytes);
    // OpenCV 4.6 names layers after ONNX nodes; graph outputs can be requested by tensor name, so expose
    // every Sigmoid input and every Split output as one.
    auto& g = *proto.mutable_graph();
    auto expose = [&](const std::string& name) {
      auto* o = g.add_output();
      o->set_name(name);
      o->mutable_type()->mutable_tensor_type()->set_elem_type(ox::TensorProto::FLOAT);
      o->mutable_type()->mutable_tensor_type()->mutable_shape();  // OpenCV requires one; any rank will do
    };
    for (const auto& n : std::vector<ox::NodeProto>(g.node().begin(), g.node().end())) {
      if (n.op_type() == "Sigmoid" || n.op_type() == "Resize" || n.op_type() == "MaxPool") expose(n.input(0));
      if (n.op_type() == "Split")
        for (const auto& o : n.output()) expose(o);
    }
    AdaptedGraph exposed = graph;
    proto.SerializeToString(&exposed.onnx_bytes);
    net = load_net(exposed, "reference");
    net.enableFusion(false);
    net.setInput(bus_blob({480, 640}));
  }
  cv::Mat activation(const std::string& tensor) { return net.forward(tensor).clone(); }
  const ox::NodeProto* node(const std::string& op, int nth = 0) const {
    for (const auto& n : proto.graph().node())
      if (n.op_type() == op && nth-- == 0) return &n;
    return nullptr;
  }
};

Reference& reference() {
  static Reference r;
  return r;
}

// A one-node (or few-node) ONNX graph over named 4-D float inputs.
struct MiniGraph {
  ox::ModelProto m;
  MiniGraph() {
    m.set_ir_version(7);
    m.add_opset_import()->set_version(12);
  }
  void input(const std::string& name, const cv::Mat& like) {
    auto* v = m.mutable_graph()->add_input();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(ox::TensorProto::FLOAT);
    for (int i = 0; i < like.dims; ++i) t->mutable_shape()->add_dim()->set_dim_value(like.size[i]);
  }
  ox::NodeProto* node(const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type(op);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  void output(const std::string& name) {
    auto* o = m.mutable_graph()->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(ox::TensorProto::FLOAT);
    o->mutable_type()->mutable_tensor_type()->mutable_shape();  // OpenCV requires one; any rank will do
  }
  void floats(const std::string& name, const std::vector<float>& v) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(ox::TensorProto::FLOAT);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (float f : v) t->add_float_data(f);
  }
  void scalar(const std::string& name, float v) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(ox::TensorProto::FLOAT);
    t->add_float_data(v);
  }
  cv::Mat run(const std::vector<std::pair<std::string, cv::Mat>>& inputs, bool fusion) {
    kernel::register_dnn_layers();
    const std::string bytes = m.SerializeAsString();
    cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    net.enableFusion(fusion);
    for (const auto& [name, mat] : inputs) net.setInput(mat, name);
    return net.forward().clone();
  }
  std::vector<cv::Mat> run_all(const std::vector<std::pair<std::string, cv::Mat>>& inputs,
                               const std::vector<std::string>& outputs) {
    kernel::register_dnn_layers();
    const std::string bytes = m.SerializeAsString();
    cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    for (const auto& [name, mat] : inputs) net.setInput(mat, name);
    std::vector<cv::Mat> out;
    net.forward(out, outputs);
    for (auto& o : out) o = o.clone();
    return out;
  }
};

void add_perm(ox::NodeProto* n) {
  auto* a = n->add_attribute();
  a->set_name("perm");
  a->set_type(ox::AttributeProto::INTS);
  for (int v : {0, 1, 3, 2}) a->add_ints(v);
}

}  // namespace

TEST(CustomLayers, SiLUMatchesSigmoidTimesXOnRealActivations) {
  auto& ref = reference();
  // The inputs of several SiLUs across the network (early, large; late, small).
  for (int nth : {0, 10, 40, 76}) {
    const auto* sig = ref.node("Sigmoid", nth);
    ASSERT_NE(sig, nullptr);
    const cv::Mat x = ref.activation(sig->input(0));
    MiniGraph opencv, ours;
    opencv.input("x", x);
    opencv.node("Sigmoid", {"x"}, "s");
    opencv.node("Mul", {"x", "s"}, "y");
    opencv.output("y");
    ours.input("x", x);
    ours.node(kernel::kSiLUOpType, {"x"}, "y");
    ours.output("y");
    const cv::Mat expected = opencv.run({{"x", x}}, true);
    const cv::Mat got = ours.run({{"x", x}}, true);
    ASSERT_EQ(got.total(), x.total());
    EXPECT_LE(aitw::testing::max_abs_diff(got, expected), 1e-4)
        << "SiLU #" << nth << " over " << x.total() << " values";
  }
}

// aitw's attention layer alone on q, k, v.
cv::Mat run_attention(const cv::Mat& q, const cv::Mat& k, const cv::Mat& v, float scale) {
  MiniGraph ours;
  for (auto [n, m] : {std::pair{"q", q}, {"k", k}, {"v", v}}) ours.input(n, m);
  auto* att = ours.node(kernel::kAttentionOpType, {"q", "k", "v"}, "y");
  auto* s = att->add_attribute();
  s->set_name("scale");
  s->set_type(ox::AttributeProto::FLOAT);
  s->set_f(scale);
  ours.output("y");
  return ours.run({{"q", q}, {"k", k}, {"v", v}}, true);
}

TEST(CustomLayers, AttentionMatchesTheOpenCvChainOnRealActivations) {
  auto& ref = reference();
  const auto* split = ref.node("Split", 0);
  // The attention's Split is the one with three outputs (q, k, v).
  for (int i = 0; split && split->output_size() != 3; ++i) split = ref.node("Split", i + 1);
  ASSERT_NE(split, nullptr);
  const cv::Mat q = ref.activation(split->output(0));
  const cv::Mat k = ref.activation(split->output(1));
  const cv::Mat v = ref.activation(split->output(2));
  ASSERT_EQ(q.dims, 4);
  const float scale = 1.f / std::sqrt(static_cast<float>(q.size[2]));

  // The exported chain, run without fusion (OpenCV 4.6 fuses its Mul wrongly).
  MiniGraph opencv;
  for (auto [n, m] : {std::pair{"q", q}, {"k", k}, {"v", v}}) opencv.input(n, m);
  add_perm(opencv.node("Transpose", {"q"}, "qt"));
  opencv.node("MatMul", {"qt", "k"}, "s");
  opencv.scalar("scale", scale);
  opencv.node("Mul", {"s", "scale"}, "ss");
  auto* sm = opencv.node("Softmax", {"ss"}, "p");
  auto* axis = sm->add_attribute();
  axis->set_name("axis");
  axis->set_type(ox::AttributeProto::INT);
  axis->set_i(-1);
  add_perm(opencv.node("Transpose", {"p"}, "pt"));
  opencv.node("MatMul", {"v", "pt"}, "y");
  opencv.output("y");

  const std::vector<std::pair<std::string, cv::Mat>> inputs{{"q", q}, {"k", k}, {"v", v}};
  const cv::Mat expected = opencv.run(inputs, false);
  const cv::Mat got = run_attention(q, k, v, scale);
  ASSERT_EQ(got.total(), v.total());
  EXPECT_LE(aitw::testing::max_abs_diff(got, expected), 1e-4);
}

cv::Mat random_mat(std::mt19937& rng, const std::vector<int>& shape) {
  std::uniform_real_distribution<float> dist(-4.f, 4.f);
  cv::Mat m(shape, CV_32F);
  for (auto* p = m.ptr<float>(); p != m.ptr<float>() + m.total(); ++p) *p = dist(rng);
  return m;
}

// The attention layer on shapes of every tile edge (token counts not a multiple of the score tiles' 24 or 64
// columns, of their vectors or of the row tiles, head sizes on and off the 32-wide apply tile, one to three
// heads) against the formula in double precision, with the AVX-512 kernels and with the 8-lane clones (the
// level the convolutions run picks them: forced in turn, as far as the CPU runs them).
void check_attention_against_double() {
  std::mt19937 rng(11);
  for (const auto& [heads, kd, hd, N] : std::vector<std::array<int, 4>>{{2, 32, 64, 300},
                                                                        {3, 16, 32, 37},
                                                                        {1, 8, 24, 29},
                                                                        {2, 32, 64, 5},
                                                                        {1, 4, 96, 1},
                                                                        {1, 32, 64, 93}}) {
    const cv::Mat q = random_mat(rng, {1, heads, kd, N}), k = random_mat(rng, {1, heads, kd, N}),
                  v = random_mat(rng, {1, heads, hd, N});
    const float scale = 1.f / std::sqrt(static_cast<float>(kd));
    const cv::Mat got = run_attention(q, k, v, scale);
    ASSERT_EQ(got.total(), v.total());
    const float* Q = q.ptr<float>();
    const float* K = k.ptr<float>();
    const float* Vv = v.ptr<float>();
    const float* G = got.ptr<float>();
    double worst = 0;
    std::vector<double> p(N);
    for (int h = 0; h < heads; ++h)
      for (int n = 0; n < N; ++n) {
        double mx = -1e300, sum = 0;
        for (int m = 0; m < N; ++m) {
          double acc = 0;
          for (int c = 0; c < kd; ++c)
            acc += static_cast<double>(Q[(h * kd + c) * N + n]) * K[(h * kd + c) * N + m];
          p[m] = scale * acc;
          mx = std::max(mx, p[m]);
        }
        for (int m = 0; m < N; ++m) sum += p[m] = std::exp(p[m] - mx);
        for (int d = 0; d < hd; ++d) {
          double y = 0;
          for (int m = 0; m < N; ++m) y += Vv[(h * hd + d) * N + m] * p[m] / sum;
          worst = std::max(worst, std::fabs(y - G[(h * hd + d) * N + n]));
        }
      }
    EXPECT_LE(worst, 1e-4) << heads << " heads, kd " << kd << ", hd " << hd << ", " << N << " tokens";
  }
}

TEST(CustomLayers, AttentionMatchesADoubleReferenceOnOddShapes) {
  struct Unforce {
    ~Unforce() { kernel::conv_force_isa(std::nullopt); }
  } unforce;
  int levels = 0;
  for (const auto isa : {kernel::ConvIsa::Avx512, kernel::ConvIsa::Avx2}) {
    if (!kernel::conv_isa_supported(isa)) continue;
    kernel::conv_force_isa(isa);
    SCOPED_TRACE(kernel::conv_isa_name(isa));
    check_attention_against_double();
    ++levels;
  }
  if (levels == 0) check_attention_against_double();  // aarch64 and x86-64 without AVX2: one path
}

// One Resize node as Ultralytics exports nn.Upsample (nearest, asymmetric, floor), marked for aitw's layer
// or not (OpenCV's).
cv::Mat run_resize(const cv::Mat& x, const std::vector<float>& scales, bool marked) {
  MiniGraph g;
  g.input("x", x);
  g.floats("roi", {});
  g.floats("scales", scales);
  auto* n = g.node("Resize", {"x", "roi", "scales"}, "y");
  for (auto [name, value] : {std::pair{"coordinate_transformation_mode", "asymmetric"},
                             {"mode", "nearest"},
                             {"nearest_mode", "floor"}}) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(ox::AttributeProto::STRING);
    a->set_s(value);
  }
  if (marked) {
    auto* a = n->add_attribute();
    a->set_name(kernel::kResizeMark);
    a->set_type(ox::AttributeProto::INT);
    a->set_i(1);
  }
  g.output("y");
  return g.run({{"x", x}}, true);
}

void expect_resize_is_opencvs(const std::vector<std::pair<cv::Mat, std::vector<float>>>& cases) {
  for (const auto& [x, scales] : cases) {
    SCOPED_TRACE(cv::format("%dx%dx%dx%d scales %gx%g", x.size[0], x.size[1], x.size[2], x.size[3], scales[2],
                            scales[3]));
    const cv::Mat expected = run_resize(x, scales, false);
    const cv::Mat got = run_resize(x, scales, true);
    ASSERT_EQ(got.dims, 4);
    ASSERT_EQ(std::vector<int>(got.size.p, got.size.p + 4),
              std::vector<int>(expected.size.p, expected.size.p + 4));
    EXPECT_EQ(aitw::testing::max_abs_diff(got, expected), 0.0);  // a copy of values: exactly the same
  }
}

// YOLO11n's two upsamplings on their real inputs (256 x 15 x 20 and 128 x 30 x 40 at 480x640).
TEST(CustomLayers, NearestResizeIsExactlyOpenCvsOnRealActivations) {
  auto& ref = reference();
  std::vector<std::pair<cv::Mat, std::vector<float>>> cases;
  for (int nth : {0, 1}) {
    const auto* r = ref.node("Resize", nth);
    ASSERT_NE(r, nullptr);
    cases.push_back({ref.activation(r->input(0)), {1, 1, 2, 2}});
  }
  expect_resize_is_opencvs(cases);
}

// Batch 2 of 1x1 planes, odd sizes at other integer factors, and what stays OpenCV's inside the layer: a
// downscale and a non-integer upscale.
TEST(CustomLayers, NearestResizeIsExactlyOpenCvsOnOddShapes) {
  std::mt19937 rng(3);
  auto random = [&](std::vector<int> shape) { return random_mat(rng, shape); };
  expect_resize_is_opencvs({{random({2, 3, 1, 1}), {1, 1, 2, 2}},
                            {random({1, 5, 7, 9}), {1, 1, 3, 2}},
                            {random({1, 2, 3, 5}), {1, 1, 1, 4}},
                            {random({1, 4, 8, 6}), {1, 1, 0.5f, 0.5f}},
                            {random({1, 3, 4, 4}), {1, 1, 1.5f, 1.5f}}});
}

// One MaxPool node, k x k, stride 1, padding k / 2, marked for aitw's layer or not (OpenCV's).
cv::Mat run_max_pool(const cv::Mat& x, int k, bool marked) {
  MiniGraph g;
  g.input("x", x);
  auto* n = g.node("MaxPool", {"x"}, "y");
  for (auto [name, v] : {std::pair{"kernel_shape", std::vector<int64_t>{k, k}},
                         {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}},
                         {"strides", std::vector<int64_t>{1, 1}}}) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(ox::AttributeProto::INTS);
    for (auto i : v) a->add_ints(i);
  }
  if (marked) {
    auto* a = n->add_attribute();
    a->set_name(kernel::kMaxPoolMark);
    a->set_type(ox::AttributeProto::INT);
    a->set_i(k);
  }
  g.output("y");
  return g.run({{"x", x}}, true);
}

void expect_max_pool_is_opencvs(const std::vector<std::pair<cv::Mat, int>>& cases) {
  for (const auto& [x, k] : cases) {
    SCOPED_TRACE(cv::format("%dx%dx%dx%d k %d", x.size[0], x.size[1], x.size[2], x.size[3], k));
    const cv::Mat expected = run_max_pool(x, k, false);
    const cv::Mat got = run_max_pool(x, k, true);
    ASSERT_EQ(got.total(), x.total());
    ASSERT_EQ(expected.total(), x.total());
    EXPECT_EQ(aitw::testing::max_abs_diff(got, expected),
              0.0);  // maxima of the same values: exactly the same
  }
}

// SPPF's three 5 x 5 pools on their real inputs (each pools the previous one's output).
TEST(CustomLayers, SameSizeMaxPoolIsExactlyOpenCvsOnRealActivations) {
  auto& ref = reference();
  std::vector<std::pair<cv::Mat, int>> cases;
  for (int nth : {0, 1, 2}) {
    const auto* p = ref.node("MaxPool", nth);
    ASSERT_NE(p, nullptr);
    cases.push_back({ref.activation(p->input(0)), 5});
  }
  expect_max_pool_is_opencvs(cases);
}

// Planes smaller than the window, one row or column, batch 2, other window sizes.
TEST(CustomLayers, SameSizeMaxPoolIsExactlyOpenCvsOnOddShapes) {
  std::mt19937 rng(5);
  auto random = [&](std::vector<int> shape) { return random_mat(rng, shape); };
  expect_max_pool_is_opencvs({{random({2, 3, 1, 1}), 5},
                              {random({1, 4, 3, 2}), 5},
                              {random({1, 2, 1, 17}), 5},
                              {random({1, 2, 13, 1}), 3},
                              {random({2, 5, 9, 11}), 3},
                              {random({1, 3, 20, 23}), 7},
                              {random({1, 2, 6, 29}), 5}});  // rows of 16 + 8 + 4 + 1 (the column strips)
}

// kMaxPoolChainOpType with `length` outputs: each the k x k pool of the one before.
// `pairs`: kPoolPairsAttr set (x and the outputs are bf16 channel pairs).
std::vector<cv::Mat> run_max_pool_chain(const cv::Mat& x, int k, int length, bool pairs = false) {
  MiniGraph g;
  g.input("x", x);
  auto* n = g.node(kernel::kMaxPoolChainOpType, {"x"}, "y0");
  std::vector<std::string> names{"y0"};
  for (int j = 1; j < length; ++j) {
    std::string name = "y";  // appended: GCC 12's -Wrestrict misfires on "y" + to_string here
    n->add_output(names.emplace_back(name += std::to_string(j)));
  }
  std::vector<std::pair<const char*, int>> attrs{{kernel::kMaxPoolMark, k}, {"outputs", length}};
  if (pairs) attrs.emplace_back(kernel::kPoolPairsAttr, 1);
  for (auto [name, v] : attrs) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(ox::AttributeProto::INT);
    a->set_i(v);
  }
  for (const auto& name : names) g.output(name);
  return g.run_all({{"x", x}}, names);
}

// SPPF's chain of pools as one layer (the adapter's chain_max_pools): every output bit for bit OpenCV's pool
// of the one before, on SPPF's real input and on odd shapes (planes smaller than the window, batch 2).
TEST(CustomLayers, MaxPoolChainIsExactlyOpenCvsPoolsInARow) {
  std::mt19937 rng(7);
  const auto* p = reference().node("MaxPool", 0);
  ASSERT_NE(p, nullptr);
  for (const auto& [x, k, length] :
       std::vector<std::tuple<cv::Mat, int, int>>{{reference().activation(p->input(0)), 5, 3},
                                                  {random_mat(rng, {2, 3, 1, 1}), 5, 3},
                                                  {random_mat(rng, {2, 5, 9, 11}), 3, 2},
                                                  {random_mat(rng, {1, 3, 20, 23}), 7, 4}}) {
    SCOPED_TRACE(
        cv::format("%dx%dx%dx%d k %d, %d pools", x.size[0], x.size[1], x.size[2], x.size[3], k, length));
    const auto got = run_max_pool_chain(x, k, length);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(length));
    cv::Mat prev = x;
    for (int j = 0; j < length; ++j) {
      const cv::Mat expected = run_max_pool(prev, k, false);
      ASSERT_EQ(got[j].total(), x.total());
      EXPECT_EQ(aitw::testing::max_abs_diff(got[j], expected), 0.0) << "output " << j;
      prev = expected;
    }
  }
}

// x (N x C x H x W) as bf16 channel pairs in a blob of its shape: per image, plane k holds channel 2k rounded
// to nearest even in its low half and 2k + 1 (0 past an odd count) in its high half; the rest of the blob is
// NaN. Written out here from the format's definition, independently of the kernels' conversion.
cv::Mat to_pairs(const cv::Mat& x) {
  const int n = x.size[0], c = x.size[1];
  const std::size_t plane = x.total() / (static_cast<std::size_t>(n) * c);
  cv::Mat out(x.dims, x.size.p, CV_32F, cv::Scalar(std::nanf("")));
  const auto bf16 = [](float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return static_cast<std::uint32_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  };
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < (c + 1) / 2; ++k)
      for (std::size_t p = 0; p < plane; ++p) {
        const float lo = x.ptr<float>(i, 2 * k)[p], hi = 2 * k + 1 < c ? x.ptr<float>(i, 2 * k + 1)[p] : 0.f;
        const std::uint32_t u = bf16(hi) << 16 | bf16(lo);
        std::memcpy(out.ptr<float>(i, k) + p, &u, 4);
      }
  return out;
}

// The chain on bf16 channel pairs (kPoolPairsAttr, SPPF's when its producer writes pairs): every output's
// pair planes bit for bit the pairs of the fp32 chain's output, on SPPF's real input and on odd shapes (an
// odd channel count, planes smaller than the window, batch 2, ties between bf16 values that differ in fp32).
TEST(CustomLayers, MaxPoolChainOnPairsIsThePairsOfTheFp32Chain) {
  std::mt19937 rng(11);
  const auto* p = reference().node("MaxPool", 0);
  ASSERT_NE(p, nullptr);
  cv::Mat ties = random_mat(rng, {1, 4, 6, 7});
  for (int i = 1; i < static_cast<int>(ties.total()); i += 2)  // neighbours equal in bf16, not in fp32
    ties.ptr<float>()[i] = std::nextafter(ties.ptr<float>()[i - 1], 10.f);
  for (const auto& [x, k, length] :
       std::vector<std::tuple<cv::Mat, int, int>>{{reference().activation(p->input(0)), 5, 3},
                                                  {random_mat(rng, {2, 3, 1, 1}), 5, 3},
                                                  {random_mat(rng, {2, 5, 9, 11}), 3, 2},
                                                  {random_mat(rng, {1, 7, 20, 23}), 7, 4},
                                                  {ties, 3, 3}}) {
    SCOPED_TRACE(
        cv::format("%dx%dx%dx%d k %d, %d pools", x.size[0], x.size[1], x.size[2], x.size[3], k, length));
    const auto got = run_max_pool_chain(to_pairs(x), k, length, true);
    const auto fp32 = run_max_pool_chain(x, k, length);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(length));
    const int n = x.size[0], pairs = (x.size[1] + 1) / 2;
    const std::size_t plane = x.total() / (static_cast<std::size_t>(n) * x.size[1]);
    for (int j = 0; j < length; ++j) {
      const cv::Mat expected = to_pairs(fp32[j]);
      ASSERT_EQ(got[j].total(), x.total());
      for (int i = 0; i < n; ++i)
        EXPECT_EQ(std::memcmp(got[j].ptr<float>(i), expected.ptr<float>(i), sizeof(float) * plane * pairs), 0)
            << "output " << j << ", image " << i;
    }
  }
}

TEST(CustomLayers, WholeNetworkAgreesWithOpenCvLayers) {
  const auto model = OnnxModel::load(kShared + "/models/yolo11n.onnx");
  AdaptOptions opencv_layers;
  opencv_layers.custom_layers = false;
  const auto ours_graph = model.adapt({480, 640});
  const auto ref_graph = model.adapt({480, 640}, opencv_layers);
  EXPECT_NE(ours_graph.summary().find("77 Sigmoid*x pairs -> AitwSiLU"), std::string::npos)
      << ours_graph.summary();
  EXPECT_NE(ours_graph.summary().find("1 attention block(s) -> AitwAttention"), std::string::npos);
  // The graph's 14 Adds each take a convolution's output (through its SiLU or not): folded into that
  // convolution, so the comparison below covers the epilogue on real data. 13 skips are computed before
  // their convolution; the attention's (its output, added to the depthwise `pe` of v) after it, so that
  // convolution runs at the Add's place.
  if (kernel::convolution_fusion_enabled()) {
    EXPECT_NE(ours_graph.summary().find("14 residual Adds -> their convolution's output loop"),
              std::string::npos)
        << ours_graph.summary();
  }
  auto ours = load_net(ours_graph, "ours");
  auto ref = load_net(ref_graph, "ref");
  const cv::Mat blob = bus_blob({480, 640});
  std::vector<cv::Mat> a, b;
  ours.setInput(blob);
  ours.forward(a, ours_graph.output_names);
  ref.setInput(blob);
  ref.forward(b, ref_graph.output_names);
  ASSERT_EQ(a.size(), 3u);
  double worst = 0;
  for (int i = 0; i < 3; ++i) worst = std::max(worst, aitw::testing::max_abs_diff(a[i], b[i]));
  // Raw head logits after ~90 layers: float rounding differences accumulate, far below what moves a box.
  EXPECT_LT(worst, 5e-3);
  RecordProperty("max_abs_diff_head_logits", std::to_string(worst));
}

// The head outputs of a net of a model adapted at 480x640, on bus.jpg.
std::vector<cv::Mat> bus_heads(cv::dnn::Net& net, const std::vector<std::string>& outputs) {
  std::vector<cv::Mat> out;
  net.setInput(bus_blob({480, 640}));
  net.forward(out, outputs);
  return out;
}

// Two nets' head outputs: the same values, all finite (aitw::testing::max_abs_diff).
void expect_same_heads(const std::vector<cv::Mat>& a, const std::vector<cv::Mat>& b) {
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(aitw::testing::max_abs_diff(a[i], b[i]), 0.0) << "head level " << i;
}

// Convolutions reading the Concats' inputs and the channel Splits' parts in place compute exactly what they
// compute on OpenCV's copies (same products, same order): both models, every head output bit for bit.
// What stays: the head's three output Concats, and YOLO11's attention Split (not along channels).
TEST(CustomLayers, ConcatsAndSplitsReadInPlaceAreBitExactOnRealActivations) {
  if (!kernel::convolution_fusion_enabled()) GTEST_SKIP() << "aitw's convolution does not run on this CPU";
  struct Expect {
    const char* model;
    const char* line;
    int slices;
  };
  for (const auto& e : {Expect{"yolo11n", "17 Concat and 9 channel Split nodes -> read in place", 1},
                        Expect{"yolov8n", "13 Concat and 8 channel Split nodes -> read in place", 0}}) {
    SCOPED_TRACE(e.model);
    const auto model = OnnxModel::load(kShared + "/models/" + e.model + ".onnx");
    AdaptOptions copies, in_place_options;
    copies.read_in_place = false;
    in_place_options.fold_upsampling = false;  // splits the sums (tested below)
    const auto in_place_graph = model.adapt({480, 640}, in_place_options);
    const auto copies_graph = model.adapt({480, 640}, copies);
    EXPECT_NE(in_place_graph.summary().find(e.line), std::string::npos) << in_place_graph.summary();
    EXPECT_EQ(copies_graph.summary().find("read in place"), std::string::npos) << copies_graph.summary();
    auto in_place = load_net(in_place_graph, "in place");
    auto ref = load_net(copies_graph, "copies");
    int concats = 0, slices = 0;
    for (const auto& name : in_place.getLayerNames()) {
      const auto layer = in_place.getLayer(in_place.getLayerId(name));
      concats += layer->type == "Concat";
      slices += layer->type == "Slice";
    }
    EXPECT_EQ(concats, 3);
    EXPECT_EQ(slices, e.slices);
    const auto a = bus_heads(in_place, in_place_graph.output_names),
               b = bus_heads(ref, copies_graph.output_names);
    expect_same_heads(a, b);
  }
}

// bf16 channel pairs between convolutions (pass_bf16_pairs): each bf16 consumer would round its fp32 input
// to the same pairs, and each producer rounds what it would have stored, so the head outputs are bit for bit
// those of the graph that keeps fp32 between them, except downstream of a depthwise 3x3 that reads pairs
// (fp32, kernel::conv_fp32_pairs): it computes on the bf16 rounding of its input, which it read in fp32
// before. YOLO11n's depthwise layers are only in the class branches (the head's cv3): its box channels (0-63)
// and all of YOLOv8n's outputs stay bit for bit the same; its class logits move by less than half of what
// bf16 moves them from fp32 (bus.jpg: 0.07-0.12 against 0.37-1.63 at most; the coco128 gate covers bf16
// itself). The producers take their AitwSiLU into their own output loop (that many fewer SiLU layers).
// The bottlenecks' skip tensors stay fp32 here (AdaptOptions::residual_pairs off: their pairs hold rounded
// values, which the Add sums; Bf16ResidualsReadAsPairs).
TEST(CustomLayers, Bf16PairsBetweenConvolutionsOnRealActivations) {
  if (!kernel::convolution_pairs_enabled()) GTEST_SKIP() << "no bf16 convolutions on this CPU";
  struct Expect {
    const char* model;
    const char* line;
    int tensors;
    int readers;
    int fp32_readers;  // depthwise layers reading pairs
    int fp32_writers;  // and writing them
    int pool_outputs;  // SPPF's max pool chain on pairs
  };
  for (
      const auto& e :
      {Expect{
           "yolo11n",
           "60 tensors between convolutions as bf16 channel pairs (65 convolutions read them, 6 of them "
           "fp32 depthwise, 0 as their fused Add's skip; 6 written by fp32 depthwise layers, 3 by 1 max pool "
           "chain)",
           60, 65, 6, 6, 3},
       Expect{
           "yolov8n",
           "48 tensors between convolutions as bf16 channel pairs (50 convolutions read them, 0 of them "
           "fp32 depthwise, 0 as their fused Add's skip; 0 written by fp32 depthwise layers, 3 by 1 max pool "
           "chain)",
           48, 50, 0, 0, 3}}) {
    SCOPED_TRACE(e.model);
    const auto model = OnnxModel::load(kShared + "/models/" + e.model + ".onnx");
    AdaptOptions pairs, fp32_between;
    pairs.precision = fp32_between.precision = kernel::ConvPrecision::Bf16;
    pairs.residual_pairs = false;
    fp32_between.bf16_pairs = false;
    const auto pairs_graph = model.adapt({480, 640}, pairs);
    const auto ref_graph = model.adapt({480, 640}, fp32_between);
    const auto fp32_graph = model.adapt({480, 640});
    EXPECT_NE(pairs_graph.summary().find(e.line), std::string::npos) << pairs_graph.summary();
    EXPECT_EQ(ref_graph.summary().find("channel pairs"), std::string::npos) << ref_graph.summary();
    EXPECT_EQ(fp32_graph.summary().find("channel pairs"), std::string::npos) << "fp32";
    auto net = load_net(pairs_graph, "pairs");
    auto ref = load_net(ref_graph, "fp32 between");
    auto fp32_net = load_net(fp32_graph, "fp32");
    const auto silu_layers = [](cv::dnn::Net& n) {
      int count = 0;
      for (const auto& name : n.getLayerNames())
        count += n.getLayer(n.getLayerId(name))->type == kernel::kSiLUOpType;
      return count;
    };
    EXPECT_EQ(silu_layers(ref) - silu_layers(net), e.tensors - e.pool_outputs);
    const auto a = bus_heads(net, pairs_graph.output_names), b = bus_heads(ref, ref_graph.output_names),
               f = bus_heads(fp32_net, fp32_graph.output_names);
    if (e.fp32_readers == 0) {
      expect_same_heads(a, b);
    } else {
      ASSERT_EQ(a.size(), 3u);
      ASSERT_EQ(b.size(), 3u);
      ASSERT_EQ(f.size(), 3u);
      const auto channels = [](const cv::Mat& m, int c0, int c1) {
        return m(std::vector<cv::Range>{cv::Range::all(), cv::Range(c0, c1), cv::Range::all(),
                                        cv::Range::all()})
            .clone();
      };
      for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("head level " + std::to_string(i));
        ASSERT_EQ(a[i].size[1], 144);
        EXPECT_EQ(aitw::testing::max_abs_diff(channels(a[i], 0, 64), channels(b[i], 0, 64)), 0.0) << "boxes";
        const double moved = aitw::testing::max_abs_diff(channels(a[i], 64, 144), channels(b[i], 64, 144)),
                     bf16 = aitw::testing::max_abs_diff(channels(b[i], 64, 144), channels(f[i], 64, 144));
        std::cout << "  [" << e.model << " level " << i << "] class logits: pairs vs fp32 between " << moved
                  << ", bf16 vs fp32 " << bf16 << "\n";
        EXPECT_GT(moved, 0.0) << "the depthwise layers read their input rounded";
        EXPECT_LT(moved, 0.5 * bf16);
      }
    }
    // The layout the profile reports (kernel::convolution_layout, `aitw bench layers`): the same layers run
    // bf16; each input a bf16 layer reads is either read as pairs or converted to them, so every pair a bf16
    // layer reads is one conversion (reorder) fewer than with fp32 between the layers, where none is read as
    // pairs. The fp32 depthwise layers convert nothing: they read pairs or floats as they are.
    struct Census {
      int bf16 = 0, fp32 = 0, pairs_out = 0, pairs_in = 0, converted = 0, readers = 0, fp32_readers = 0,
          fp32_pairs_in = 0, fp32_writers = 0, pool_pairs = 0;
    };
    const auto census = [](cv::dnn::Net& n) {
      Census c;
      for (const auto& name : n.getLayerNames()) {
        c.pool_pairs += kernel::max_pool_chain_pair_outputs(n.getLayer(n.getLayerId(name)));
        const auto l = kernel::convolution_layout(n.getLayer(n.getLayerId(name)));
        if (!l) continue;
        const bool fp32 = l->precision == kernel::ConvPrecision::Fp32;
        ++(fp32 ? c.fp32 : c.bf16);
        c.fp32_readers += fp32 && l->pair_inputs > 0;
        c.fp32_pairs_in += fp32 ? l->pair_inputs : 0;
        c.fp32_writers += fp32 && l->pairs_out;
        EXPECT_EQ(l->converted_inputs, fp32 ? 0 : l->data_inputs - l->pair_inputs) << name;
        c.pairs_out += l->pairs_out;
        c.pairs_in += l->pair_inputs;
        c.converted += l->converted_inputs;
        c.readers += l->pair_inputs > 0;
      }
      return c;
    };
    const Census p = census(net), r = census(ref);
    EXPECT_EQ(p.bf16 + p.fp32, std::string(e.model) == "yolo11n" ? 87 : 63);
    EXPECT_EQ(p.bf16, r.bf16);
    EXPECT_GT(p.bf16, p.fp32);
    EXPECT_EQ(p.pairs_out, e.tensors - e.pool_outputs);
    EXPECT_EQ(p.pool_pairs, e.pool_outputs);
    EXPECT_EQ(r.pool_pairs, 0);
    EXPECT_EQ(p.readers, e.readers);
    EXPECT_EQ(p.fp32_readers, e.fp32_readers);
    EXPECT_EQ(p.fp32_writers, e.fp32_writers);
    EXPECT_GE(p.pairs_in, p.readers);
    EXPECT_EQ(r.pairs_out + r.pairs_in, 0);
    EXPECT_EQ(p.converted + p.pairs_in - p.fp32_pairs_in, r.converted);
    fp32_net.setInput(cv::Mat(std::vector<int>{1, 3, 480, 640}, CV_32F, cv::Scalar(0.5)));
    fp32_net.forward();
    const Census fc = census(fp32_net);
    EXPECT_EQ(fc.fp32, p.bf16 + p.fp32);
    EXPECT_EQ(fc.bf16 + fc.converted + fc.pairs_in + fc.pairs_out + fc.pool_pairs, 0);
  }
}

// The bottlenecks' skip tensors read as bf16 pairs too (AdaptOptions::residual_pairs, the default): a C3k2's
// (C2f's) cv1, whose second half is its first bottleneck's skip, then writes pairs, and the fused Add sums
// the skip's bf16 rounding instead of its fp32 values: that many fewer fp32 tensors converted by their bf16
// readers (YOLO11n 30 -> 19, YOLOv8n 21 -> 13). The heads move (mean |difference| over bus.jpg's head
// outputs 0.018-0.021 on YOLO11n, 0.012-0.015 on YOLOv8n, against 0.016-0.024 between bf16 and fp32), but
// their distance from fp32 grows by less than 30 % (measured: YOLO11n 0.65-0.71 of it, rounding errors that
// partly cancel; YOLOv8n 1.05-1.17; the coco128 gate covers the accuracy: mAP50-95 0.4944 / 0.4547 against
// 0.4935 / 0.4548 with fp32 skips). The layers marked read their skip as pairs.
TEST(CustomLayers, Bf16ResidualsReadAsPairs) {
  if (!kernel::convolution_pairs_enabled()) GTEST_SKIP() << "no bf16 convolutions on this CPU";
  struct Expect {
    const char* model;
    const char* line;
    int tensors, skips;
  };
  for (
      const auto& e :
      {Expect{
           "yolo11n",
           "67 tensors between convolutions as bf16 channel pairs (77 convolutions read them, 6 of them "
           "fp32 depthwise, 7 as their fused Add's skip; 6 written by fp32 depthwise layers, 3 by 1 max pool "
           "chain)",
           67, 7},
       Expect{
           "yolov8n",
           "52 tensors between convolutions as bf16 channel pairs (58 convolutions read them, 0 of them "
           "fp32 depthwise, 4 as their fused Add's skip; 0 written by fp32 depthwise layers, 3 by 1 max pool "
           "chain)",
           52, 4}}) {
    SCOPED_TRACE(e.model);
    const auto model = OnnxModel::load(kShared + "/models/" + e.model + ".onnx");
    AdaptOptions on, off;
    on.precision = off.precision = kernel::ConvPrecision::Bf16;
    off.residual_pairs = false;
    const auto on_graph = model.adapt({480, 640}, on), off_graph = model.adapt({480, 640}, off),
               fp32_graph = model.adapt({480, 640});
    EXPECT_NE(on_graph.summary().find(e.line), std::string::npos) << on_graph.summary();
    auto on_net = load_net(on_graph, "residual pairs"), off_net = load_net(off_graph, "fp32 residuals"),
         fp32_net = load_net(fp32_graph, "fp32");
    const auto a = bus_heads(on_net, on_graph.output_names), b = bus_heads(off_net, off_graph.output_names),
               f = bus_heads(fp32_net, fp32_graph.output_names);
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    ASSERT_EQ(f.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE("head level " + std::to_string(i));
      const double moved = cv::norm(a[i], b[i], cv::NORM_L1) / a[i].total(),
                   bf16 = cv::norm(b[i], f[i], cv::NORM_L1) / b[i].total(),
                   both = cv::norm(a[i], f[i], cv::NORM_L1) / a[i].total();
      std::cout << "  [" << e.model << " level " << i << "] mean |head - head with fp32 skips| " << moved
                << ", of bf16 - fp32 " << bf16 << ", with the skips' pairs - fp32 " << both << " (max "
                << aitw::testing::max_abs_diff(a[i], b[i]) << " / " << aitw::testing::max_abs_diff(b[i], f[i])
                << " / " << aitw::testing::max_abs_diff(a[i], f[i]) << ")\n";
      EXPECT_GT(moved, 0.0) << "the skips are rounded";
      EXPECT_LT(both, 1.3 * bf16);
    }
    // Each tensor now written as pairs is one a bf16 layer no longer converts, and the skips are read as
    // pairs only by bf16 layers.
    int skips = 0, pairs_out_on = 0, pairs_out_off = 0, converted_on = 0, converted_off = 0;
    for (const auto& name : on_net.getLayerNames()) {
      const auto l = kernel::convolution_layout(on_net.getLayer(on_net.getLayerId(name)));
      if (!l) continue;
      skips += l->residual_pairs;
      EXPECT_TRUE(!l->residual_pairs || l->precision == kernel::ConvPrecision::Bf16) << name;
      pairs_out_on += l->pairs_out;
      converted_on += l->converted_inputs;
    }
    for (const auto& name : off_net.getLayerNames()) {
      const auto l = kernel::convolution_layout(off_net.getLayer(off_net.getLayerId(name)));
      if (!l) continue;
      EXPECT_FALSE(l->residual_pairs) << name;
      pairs_out_off += l->pairs_out;
      converted_off += l->converted_inputs;
    }
    EXPECT_EQ(skips, e.skips);
    EXPECT_EQ(pairs_out_on + 3, e.tensors);  // + SPPF's three pools
    EXPECT_GT(pairs_out_on, pairs_out_off);
    EXPECT_LT(converted_on, converted_off);
  }
}

// The neck's upsamplings folded into the 1x1 convolutions after them: the Resize layers no longer run, and
// the head outputs are those of the unfolded graph up to float rounding (each folded sum is split in two).
TEST(CustomLayers, UpsamplingFoldedIntoTheNextConvolutionOnRealActivations) {
  if (!kernel::convolution_fusion_enabled()) GTEST_SKIP() << "aitw's convolution does not run on this CPU";
  for (const char* name : {"yolo11n", "yolov8n"}) {
    SCOPED_TRACE(name);
    const auto model = OnnxModel::load(kShared + "/models/" + name + ".onnx");
    AdaptOptions unfolded;
    unfolded.fold_upsampling = false;
    const auto folded_graph = model.adapt({480, 640});
    const auto ref_graph = model.adapt({480, 640}, unfolded);
    EXPECT_NE(folded_graph.summary().find("2 nearest Resize nodes -> read at their input's size"),
              std::string::npos)
        << folded_graph.summary();
    auto folded = load_net(folded_graph, "folded");
    auto ref = load_net(ref_graph, "unfolded");
    int resizes = 0;
    for (const auto& layer_name : folded.getLayerNames())
      resizes += folded.getLayer(folded.getLayerId(layer_name))->type == "Resize";
    EXPECT_EQ(resizes, 0);
    const auto a = bus_heads(folded, folded_graph.output_names), b = bus_heads(ref, ref_graph.output_names);
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      double peak = 0;
      cv::minMaxIdx(b[i], nullptr, &peak);
      // Rounding carried through the layers after the folds (measured 3e-5 to 7e-5 on logits up to ~15); a
      // wrong fold moves them by whole units.
      EXPECT_LE(aitw::testing::max_abs_diff(a[i], b[i]), 1e-4 * std::max(1.0, peak)) << "head level " << i;
    }
  }
}

// The head outputs requested from the layers that compute them (the Concats) instead of the Identity copies
// OpenCV's importer puts behind graph outputs: the same tensors, and the copies no longer run.
TEST(CustomLayers, HeadOutputsComeFromTheirConcatsOnRealActivations) {
  const auto model = OnnxModel::load(kShared + "/models/yolo11n.onnx");
  const auto graph = model.adapt({480, 640});
  auto net = load_net(graph, "yolo11n");
  const auto names = forward_output_names(net, graph);
  ASSERT_EQ(names.size(), graph.output_names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_NE(names[i], graph.output_names[i]);
    EXPECT_EQ(net.getLayer(net.getLayerId(names[i]))->type, "Concat") << names[i];
    EXPECT_EQ(net.getLayer(net.getLayerId(graph.output_names[i]))->type, "Identity");
  }
  const cv::Mat blob = bus_blob({480, 640});
  std::vector<cv::Mat> direct, copied;
  net.setInput(blob);
  net.forward(direct, names);
  std::vector<double> ms;
  net.getPerfProfile(ms);
  for (const auto& n : graph.output_names) EXPECT_EQ(ms[net.getLayerId(n) - 1], 0.0) << n << " ran";
  for (auto& m : direct) m = m.clone();
  net.setInput(blob);
  net.forward(copied, graph.output_names);
  ASSERT_EQ(direct.size(), copied.size());
  for (std::size_t i = 0; i < direct.size(); ++i)
    EXPECT_EQ(aitw::testing::max_abs_diff(direct[i], copied[i]), 0.0);
}

TEST(CustomLayers, YoloV8HasNoAttentionButGetsSiLU) {
  const auto g = OnnxModel::load(kShared + "/models/yolov8n.onnx").adapt({480, 640});
  EXPECT_NE(g.summary().find("Sigmoid*x pairs -> AitwSiLU"), std::string::npos);
  EXPECT_EQ(g.summary().find("AitwAttention"), std::string::npos);
}

// Every convolution of both models runs aitw's layer with custom layers on, none with them off.
TEST(CustomLayers, EveryConvolutionIsAitws) {
  for (const auto& [name, expected] : {std::pair<std::string, int>{"yolo11n", 87}, {"yolov8n", 63}}) {
    const auto model = OnnxModel::load(kShared + "/models/" + name + ".onnx");
    AdaptOptions opencv_layers;
    opencv_layers.custom_layers = false;
    for (bool custom : {true, false}) {
      auto net = load_net(model.adapt({480, 640}, custom ? AdaptOptions{} : opencv_layers), name);
      int convs = 0, aitw = 0;
      for (const auto& layer_name : net.getLayerNames()) {
        const auto layer = net.getLayer(net.getLayerId(layer_name));
        if (layer->type != "Convolution") continue;
        ++convs;
        aitw += kernel::is_aitw_convolution(layer);
      }
      EXPECT_EQ(convs, expected) << name;
      int resizes = 0, aitw_resizes = 0, pools = 0, chains = 0;
      for (const auto& layer_name : net.getLayerNames()) {
        const auto layer = net.getLayer(net.getLayerId(layer_name));
        resizes += layer->type == "Resize";
        aitw_resizes += kernel::is_aitw_resize(layer);
        pools += layer->type == "Pooling";
        chains += layer->type == kernel::kMaxPoolChainOpType;
      }
      // With aitw's convolution the neck's two upsamplings are folded into the 1x1 after them.
      const bool folded = custom && kernel::convolution_fusion_enabled();
      EXPECT_EQ(resizes, folded ? 0 : 2) << name;
      EXPECT_EQ(aitw_resizes, custom && !folded ? 2 : 0)
          << name << (custom ? " with" : " without") << " custom layers";
      // SPPF's three pools: OpenCV's, or aitw's chain of them.
      EXPECT_EQ(pools, custom ? 0 : 3) << name;
      EXPECT_EQ(chains, custom ? 1 : 0) << name << (custom ? " with" : " without") << " custom layers";
      EXPECT_EQ(aitw, custom && kernel::aitw_convolution_enabled() ? expected : 0)
          << name << (custom ? " with" : " without") << " custom layers";
    }
  }
}

}  // namespace aitw::model
