// aitw's convolution against OpenCV 4.6's own convolution layer on random data, at every ISA level this
// machine runs plus the portable one. Tolerance: max |aitw - OpenCV| <= 1e-4 * max(1, max |OpenCV|). Both
// sum the same fp32 products in a different order; with weights scaled by 1/sqrt(taps * channels) the
// outputs are O(1) and reordering moves them by a few ulps times sqrt(terms) (~1e-6 for the largest
// shapes here), so 1e-4 leaves room for the SiLU polynomials (relative error <= 1e-6) and catches any
// wrong tap, pad, phase or tail (errors of order 0.1 to 1).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/conv_params.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/kernel/fast_math.hpp"
#include "aitw/testing/mats.hpp"

namespace aitw::kernel {
namespace {

constexpr double kTolerance = 1e-4;

struct Case {
  const char* name;
  ConvShape s;
  int n, h, w;
};

ConvShape shape(int ci, int co, int k, int stride, int pad, int groups = 1) {
  ConvShape s;
  s.in_channels = ci;
  s.out_channels = co;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = pad;
  s.groups = groups;
  return s;
}

ConvShape asymmetric(ConvShape s, int t, int l, int b, int r) {
  s.pad_top = t;
  s.pad_left = l;
  s.pad_bottom = b;
  s.pad_right = r;
  return s;
}

std::vector<Case> cases() {
  return {
      {"1x1", shape(16, 32, 1, 1, 0), 1, 20, 20},
      {"1x1_odd_channels_width", shape(3, 13, 1, 1, 0), 1, 5, 7},
      {"1x1_one_pixel", shape(37, 21, 1, 1, 0), 1, 1, 1},
      {"1x1_wide", shape(64, 24, 1, 1, 0), 1, 3, 161},
      // More than 64 outputs (the 1x1 layers' tiles over several blocks), odd input channels among them.
      {"1x1_many_outputs", shape(20, 72, 1, 1, 0), 1, 7, 19},
      {"1x1_many_outputs_odd", shape(5, 67, 1, 1, 0), 1, 3, 33},
      {"3x3s1", shape(16, 16, 3, 1, 1), 1, 24, 40},
      {"3x3s1_odd", shape(5, 11, 3, 1, 1), 1, 9, 13},
      {"3x3s1_one_pixel", shape(7, 9, 3, 1, 1), 1, 1, 1},
      {"3x3s1_no_pad", shape(6, 10, 3, 1, 0), 1, 8, 21},
      {"3x3s2", shape(16, 32, 3, 2, 1), 1, 20, 20},
      {"3x3s2_odd", shape(3, 7, 3, 2, 1), 1, 11, 7},
      // Fewer than 8 input channels (the stem), too large to split whole: bands of 64 KB, here 18 of 4 rows
      // and a last of 3.
      {"3x3s2_few_channels_banded", shape(3, 16, 3, 2, 1), 2, 150, 600},
      {"3x3s2_one_pixel", shape(4, 5, 3, 2, 1), 1, 1, 1},
      {"3x3s2_asymmetric_pads", asymmetric(shape(6, 9, 3, 2, 0), 0, 1, 1, 0), 1, 10, 9},
      {"5x5s1_generic_taps", shape(4, 6, 5, 1, 2), 1, 9, 17},
      // 3x3 padding 1 with 8 input channels or more (and, at stride 1, at least a block of output channels:
      // 32 on AVX-512, 8 on SSE2 / NEON) runs on tiles over output channels (KernelSet::oc_tile): a partial
      // last block of channels, odd sizes (at stride 2 the last column and row meet the padding), the last
      // tile overlapping its neighbour, a row of exactly one tile (both edges), rows narrower than a tile
      // (pixel by pixel), one pixel.
      {"3x3s1_over_channels", shape(8, 40, 3, 1, 1), 1, 9, 23},
      {"3x3s1_over_channels_one_tile", shape(9, 32, 3, 1, 1), 1, 5, 10},
      {"3x3s1_over_channels_narrow", shape(16, 33, 3, 1, 1), 1, 7, 5},
      {"3x3s1_over_channels_one_pixel", shape(8, 32, 3, 1, 1), 1, 1, 1},
      {"3x3s1_over_channels_wide", shape(12, 64, 3, 1, 1), 1, 6, 61},
      {"3x3s2_over_channels_odd", shape(9, 40, 3, 2, 1), 1, 13, 27},
      {"3x3s2_over_channels_narrow", shape(12, 32, 3, 2, 1), 1, 6, 9},
      {"3x3s2_over_channels_one_pixel", shape(8, 16, 3, 2, 1), 1, 1, 1},
      {"3x3s2_over_channels_tile_and_one", shape(8, 64, 3, 2, 1), 1, 4, 45},
      // A last block of at most one vector of channels takes the half-width tiles (KernelSet::oc_half):
      // YOLOv8n's head has 80 = 32 + 32 + 16; 48 = 32 + 16 at stride 2; 56 = 32 + 24 stays on full tiles.
      {"3x3s1_over_channels_half_block", shape(8, 80, 3, 1, 1), 1, 7, 25},
      {"3x3s2_over_channels_half_block", shape(10, 48, 3, 2, 1), 1, 9, 31},
      {"3x3s1_over_channels_over_half", shape(8, 56, 3, 1, 1), 1, 5, 12},
      {"3x3s1_over_channels_one_vector", shape(16, 16, 3, 1, 1), 1, 8, 23},
      {"dw3x3s1", shape(24, 24, 3, 1, 1, 24), 1, 15, 20},
      {"dw3x3s1_one_pixel", shape(8, 8, 3, 1, 1, 8), 1, 1, 1},
      {"dw3x3s2_odd", shape(9, 9, 3, 2, 1, 9), 1, 13, 11},
      // Depthwise 3x3 stride 1 pad 1 goes row by row on rows of 64 floats or more with 8 lanes or more
      // (KernelSet::dw3: AVX-512, AVX2), else as one flat sequence per channel (KernelSet::dw3_flat, every
      // width on the portable level): partial last vectors, whole vectors only, a single column, widths
      // around a vector, few channels on a tall image (units split by rows too); other paddings take the
      // band path.
      {"dw3x3s1_rows_odd_widths", shape(5, 5, 3, 1, 1, 5), 1, 7, 83},
      {"dw3x3s1_rows_whole_vectors", shape(6, 6, 3, 1, 1, 6), 1, 9, 64},
      {"dw3x3s1_rows_tall_two_channels", shape(2, 2, 3, 1, 1, 2), 1, 53, 65},
      {"dw3x3s1_flat_odd_widths", shape(5, 5, 3, 1, 1, 5), 1, 7, 47},
      {"dw3x3s1_flat_whole_vectors", shape(6, 6, 3, 1, 1, 6), 1, 9, 32},
      {"dw3x3s1_flat_vector_and_one", shape(6, 6, 3, 1, 1, 6), 1, 9, 17},
      {"dw3x3s1_flat_three_lanes_short", shape(3, 3, 3, 1, 1, 3), 1, 4, 15},
      {"dw3x3s1_flat_one_column", shape(3, 3, 3, 1, 1, 3), 1, 11, 1},
      {"dw3x3s1_flat_two_columns", shape(3, 3, 3, 1, 1, 3), 1, 5, 2},
      {"dw3x3s1_flat_tall_two_channels", shape(2, 2, 3, 1, 1, 2), 1, 53, 33},
      {"dw3x3s1_no_pad", shape(7, 7, 3, 1, 0, 7), 1, 9, 19},
      {"dw3x3s1_asymmetric_pads", asymmetric(shape(4, 4, 3, 1, 1, 4), 1, 0, 1, 1), 1, 6, 10},
      // Images whose zero-padded phase planes exceed 1 MB are split band by band (several bands per
      // image); smaller ones once, whole, with units split by output-channel blocks.
      {"3x3s1_bands", shape(64, 20, 3, 1, 1), 1, 60, 80},
      {"3x3s2_bands", shape(32, 10, 3, 2, 1), 1, 120, 100},
      {"3x3s1_whole_many_channels", shape(256, 20, 3, 1, 1), 1, 20, 30},
      {"3x3s2_whole_many_channels", shape(200, 10, 3, 2, 1), 1, 30, 26},
      {"dw3x3s1_bands", shape(512, 512, 3, 1, 1, 512), 1, 30, 40},
      {"batch2_1x1", shape(12, 20, 1, 1, 0), 2, 6, 9},
      {"batch2_3x3s1", shape(10, 14, 3, 1, 1), 2, 7, 19},
      {"batch2_dw3x3", shape(16, 16, 3, 1, 1, 16), 2, 5, 6},
      {"batch2_3x3s2", shape(16, 24, 3, 2, 1), 2, 8, 22},
      {"batch2_3x3s1_over_channels", shape(8, 32, 3, 1, 1), 2, 5, 17},
  };
}

cv::Mat random_mat(const std::vector<int>& dims, float scale, std::mt19937& rng) {
  cv::Mat m(dims, CV_32F);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (auto* p = m.ptr<float>(); p != m.ptr<float>() + m.total(); ++p) *p = d(rng);
  return m;
}

cv::dnn::LayerParams conv_params(const ConvShape& s, const cv::Mat& w, const cv::Mat& b) {
  return convolution_layer_params(s, w, b, false);
}

// OpenCV's own convolution. OpenCV 4.6 refuses asymmetric pads: those run on an explicitly padded input.
cv::Mat opencv_conv(const ConvShape& s, const cv::Mat& w, const cv::Mat& b, const cv::Mat& in) {
  if (s.pad_top != s.pad_bottom || s.pad_left != s.pad_right) {
    const int n = in.size[0], c = in.size[1], h = in.size[2], wd = in.size[3];
    const int hp = h + s.pad_top + s.pad_bottom, wp = wd + s.pad_left + s.pad_right;
    cv::Mat padded(std::vector<int>{n, c, hp, wp}, CV_32F, cv::Scalar(0));
    for (int i = 0; i < n * c; ++i)
      for (int y = 0; y < h; ++y)
        std::copy(in.ptr<float>() + (i * h + y) * wd, in.ptr<float>() + (i * h + y + 1) * wd,
                  padded.ptr<float>() + (i * hp + y + s.pad_top) * wp + s.pad_left);
    ConvShape unpadded = s;
    unpadded.pad_top = unpadded.pad_left = unpadded.pad_bottom = unpadded.pad_right = 0;
    return opencv_conv(unpadded, w, b, padded);
  }
  cv::dnn::Net net;
  auto lp = conv_params(s, w, b);
  net.addLayerToPrev(lp.name, lp.type, lp);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setInput(in);
  return net.forward().clone();
}

double max_rel_diff(const cv::Mat& a, const cv::Mat& ref) {
  EXPECT_EQ(a.total(), ref.total());
  const cv::Mat fa(1, static_cast<int>(a.total()), CV_32F, const_cast<float*>(a.ptr<float>()));
  const cv::Mat fr(1, static_cast<int>(ref.total()), CV_32F, const_cast<float*>(ref.ptr<float>()));
  return aitw::testing::max_abs_diff(fa, fr) / std::max(1.0, cv::norm(fr, cv::NORM_INF));
}

// `out` holds n images of out_b floats, each followed by `gap` floats that were -7 before the forward: the
// images side by side in the shape of `like`, after checking that every gap stayed intact.
cv::Mat ungap(const std::vector<float>& out, const cv::Mat& like, int n, std::ptrdiff_t out_b,
              std::ptrdiff_t gap) {
  cv::Mat got(like.dims, like.size.p, CV_32F);
  for (int i = 0; i < n; ++i) {
    std::copy(out.begin() + i * (out_b + gap), out.begin() + i * (out_b + gap) + out_b,
              got.ptr<float>() + i * out_b);
    for (std::ptrdiff_t k = 0; k < gap; ++k) EXPECT_EQ(out[i * (out_b + gap) + out_b + k], -7.f);
  }
  return got;
}

// OpenCV's convolution output with the activation aitw fuses applied after it.
cv::Mat activated(const cv::Mat& ref, ConvActivation act) {
  cv::Mat expect = ref.clone();
  if (act == ConvActivation::SiLU) silu(expect.ptr<float>(), expect.ptr<float>(), expect.total());
  if (act == ConvActivation::ReLU) expect = cv::max(expect, 0.f);
  return expect;
}

std::vector<ConvIsa> levels() {
  std::vector<ConvIsa> v{ConvIsa::Portable};
  for (auto l : {ConvIsa::Avx2, ConvIsa::Avx512})
    if (conv_isa_supported(l)) v.push_back(l);
  return v;
}

class ConvVsOpenCV : public ::testing::TestWithParam<ConvIsa> {
 protected:
  void SetUp() override {
    register_dnn_layers();
    conv_force_isa(GetParam());
  }
  void TearDown() override { conv_force_isa(std::nullopt); }
};

TEST_P(ConvVsOpenCV, EveryShapeClassAndActivation) {
  std::mt19937 rng(42);
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    const auto& s = c.s;
    const int cig = s.in_channels / s.groups;
    const float wscale = 1.f / std::sqrt(static_cast<float>(cig * s.kernel_h * s.kernel_w));
    const cv::Mat w = random_mat({s.out_channels, cig, s.kernel_h, s.kernel_w}, wscale, rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const cv::Mat ref = opencv_conv(s, w, b, in);
    ASSERT_EQ(ref.size[2], s.out_h(c.h));
    ASSERT_EQ(ref.size[3], s.out_w(c.w));
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), GetParam());
    std::vector<float> ws(conv.workspace_floats(c.h, c.w));
    const std::ptrdiff_t in_b = static_cast<std::ptrdiff_t>(s.in_channels) * c.h * c.w;
    const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(s.out_channels) * ref.size[2] * ref.size[3];
    for (auto act : {ConvActivation::None, ConvActivation::SiLU, ConvActivation::ReLU}) {
      SCOPED_TRACE(static_cast<int>(act));
      cv::Mat expect = activated(ref, act);
      // Output written with a gap between images (as into a fused Concat's buffer): the gap stays intact.
      const std::ptrdiff_t gap = 5;
      std::vector<float> out(static_cast<std::size_t>(c.n * (out_b + gap)), -7.f);
      conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, out.data(), out_b + gap, act, ws.data(), ws.size());
      cv::Mat got = ungap(out, ref, c.n, out_b, gap);
      EXPECT_LE(max_rel_diff(got, expect), kTolerance);
    }
  }
}

// Depthwise rows read flat (dw3_flat) see the neighbouring rows' end pixels at column -1 and w and clear
// them: a NaN or an infinity at a row's end reaches exactly the outputs whose window holds it. (OpenCV 4.6's
// own depthwise layer spreads them further, so the reference here is the plain sum.)
TEST_P(ConvVsOpenCV, DepthwiseRowEndsDoNotLeakNonFiniteValues) {
  std::mt19937 rng(11);
  for (const int w : {5, 20, 40, 80}) {
    SCOPED_TRACE(w);
    const ConvShape s = shape(4, 4, 3, 1, 1, 4);
    const int h = 6;
    const cv::Mat wt = random_mat({4, 1, 3, 3}, 0.3f, rng), b = random_mat({4}, 0.5f, rng);
    cv::Mat in = random_mat({1, 4, h, w}, 1.f, rng);
    float* p = in.ptr<float>();
    p[(0 * h + 2) * w + w - 1] = std::numeric_limits<float>::quiet_NaN();  // channel 0, row 2, last column
    p[(1 * h + 3) * w] = std::numeric_limits<float>::infinity();           // channel 1, row 3, column 0
    p[(2 * h + 0) * w] = -std::numeric_limits<float>::infinity();          // channel 2, first pixel
    p[(3 * h + h - 1) * w + w - 1] = std::numeric_limits<float>::quiet_NaN();  // channel 3, last pixel
    PackedConv conv(s, wt.ptr<float>(), b.ptr<float>(), GetParam());
    std::vector<float> ws(conv.workspace_floats(h, w));
    std::vector<float> got(static_cast<std::size_t>(4 * h * w), -7.f);
    conv.forward(in.ptr<float>(), 1, h, w, 4 * h * w, got.data(), 4 * h * w, ConvActivation::None, ws.data(),
                 ws.size());
    for (int c = 0; c < 4; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          bool hit = false;
          double e = b.ptr<float>()[c];
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int yy = y + dy, xx = x + dx;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              const float v = p[(c * h + yy) * w + xx];
              if (!std::isfinite(v)) hit = true;
              e += static_cast<double>(wt.ptr<float>()[c * 9 + (dy + 1) * 3 + dx + 1]) * v;
            }
          const float g = got[static_cast<std::size_t>((c * h + y) * w + x)];
          EXPECT_EQ(!std::isfinite(g), hit) << "channel " << c << " row " << y << " column " << x;
          if (!hit) {
            EXPECT_NEAR(g, e, kTolerance) << "channel " << c << " row " << y << " column " << x;
          }
        }
  }
}

// The bf16 of x (round to nearest even, as vcvtneps2bf16 for the finite, normal values the tests use).
std::uint32_t bf16_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
}
// That bf16 as a float (NaN and the infinities as themselves).
float bf16_value(float x) {
  if (!std::isfinite(x)) return x;
  const std::uint32_t b = bf16_bits(x) << 16;
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// The fused SiLU where its exponent is clamped (t = -x log2 e to +-126, x beyond ~87): large finite values
// give the exact SiLU (x, or a negligible negative), the infinities keep their sign, NaN stays NaN. A 1x1
// layer with unit weights passes each input through to every output channel. (Below about -1e32 the clamp
// shows: x / (1 + 2^126) is no longer negligible, -3.5 at -3e38; no activation comes near.) The bf16
// kernels too, where the CPU has them: their SiLU (degree 3, no clamp) within 7.5e-5, and NaN below
// -2.3e38.
TEST_P(ConvVsOpenCV, FusedSiluAtExtremeValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {0.f,     1.f,   -1.f,   20.f,  -20.f,  86.f,
                                     -86.f,   88.f,  -88.f,  100.f, -100.f, 1000.f,
                                     -1000.f, 3e38f, -1e30f, inf,   -inf,   std::nanf("")};
  const int co = 8, hw = static_cast<int>(values.size());
  const std::vector<float> ones(co, 1.f);
  std::vector<ConvPrecision> precisions = {ConvPrecision::Fp32};
  if (GetParam() == ConvIsa::Avx512 && conv_bf16_supported()) precisions.push_back(ConvPrecision::Bf16);
  for (const ConvPrecision precision : precisions) {
    const bool bf16 = precision == ConvPrecision::Bf16;
    // No int8 grid (all scales 0): bf16 weights of 1, sums of x itself (on the grid, 127 x would overflow).
    const std::vector<double> no_grid(co, 0.);
    PackedConv conv(shape(1, co, 1, 1, 0), ones.data(), nullptr, GetParam(), precision, no_grid.data());
    ASSERT_EQ(conv.precision(), precision);
    std::vector<float> ws(conv.workspace_floats(1, hw) + 1), got(static_cast<std::size_t>(co) * hw, -7.f);
    conv.forward(values.data(), 1, 1, hw, hw, got.data(), static_cast<std::ptrdiff_t>(co) * hw,
                 ConvActivation::SiLU, ws.data(), ws.size());
    for (int o = 0; o < co; ++o)
      for (int i = 0; i < hw; ++i) {
        // bf16 multiplies the bf16 of x (by weights of 1: exact sums).
        const float x = bf16 ? bf16_value(values[i]) : values[i],
                    g = got[static_cast<std::size_t>(o) * hw + i];
        SCOPED_TRACE(::testing::Message() << (bf16 ? "bf16" : "fp32") << " x " << x << " channel " << o);
        if (std::isnan(x)) {
          EXPECT_TRUE(std::isnan(g));
        } else if (bf16 && x < -2.3e38f) {
          // The bf16 kernels' SiLU has no clamp (conv_microkernel.hpp): t = -x log2(e) is +inf, f = t - n
          // NaN, and vscalefps(NaN, +inf) is +inf: x / inf, NaN. (At the other end vscalefps(NaN, -inf) is
          // +0: x / 1, x itself, as below.)
          EXPECT_TRUE(std::isnan(g)) << g;
        } else if (std::isinf(x)) {
          EXPECT_EQ(g, x);
        } else {
          // fp32 within 1e-6 of the exact SiLU; bf16's degree-3 form within 7.5e-5.
          const double e = x / (1.0 + std::exp(-static_cast<double>(x)));
          EXPECT_NEAR(g, e, (bf16 ? 1e-4 : 1e-6) * std::max(1.0, std::fabs(e)));
        }
      }
  }
}

// The layer through cv::dnn: marked nodes get aitw's layer, unmarked ones OpenCV's; BatchNorm (tryFuse)
// and SiLU (setActivation) fold into it.
TEST_P(ConvVsOpenCV, LayerInANetWithBatchNormAndSiLU) {
  std::mt19937 rng(3);
  const ConvShape s = shape(8, 12, 3, 2, 1);
  const cv::Mat w = random_mat({12, 8, 3, 3}, 0.2f, rng), b = random_mat({12}, 0.5f, rng);
  const cv::Mat in = random_mat({2, 8, 10, 14}, 1.f, rng);
  cv::Mat mean = random_mat({12}, 0.3f, rng), var = cv::abs(random_mat({12}, 1.f, rng)) + 0.5f;
  cv::Mat gamma = random_mat({12}, 1.f, rng), beta = random_mat({12}, 0.2f, rng);
  auto build = [&](bool aitw) {
    cv::dnn::Net net;
    auto lp = conv_params(s, w, b);
    if (aitw) lp.set(kConvolutionMark, 1);
    net.addLayerToPrev(lp.name, lp.type, lp);
    cv::dnn::LayerParams bn;
    bn.name = "bn";
    bn.type = "BatchNorm";
    bn.set("has_weight", true);
    bn.set("has_bias", true);
    bn.set("eps", 1e-3f);
    bn.blobs = {mean.reshape(1, 1), var.reshape(1, 1), gamma.reshape(1, 1), beta.reshape(1, 1)};
    net.addLayerToPrev(bn.name, bn.type, bn);
    cv::dnn::LayerParams act;
    act.name = "silu";
    act.type = kSiLUOpType;
    net.addLayerToPrev(act.name, act.type, act);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    return net;
  };
  cv::dnn::Net ours = build(true), ref = build(false);
  EXPECT_EQ(is_aitw_convolution(ours.getLayer(ours.getLayerId("conv"))), aitw_convolution_enabled());
  EXPECT_FALSE(is_aitw_convolution(ref.getLayer(ref.getLayerId("conv"))));
  ours.setInput(in);
  ref.setInput(in);
  const cv::Mat a = ours.forward().clone(), r = ref.forward().clone();
  EXPECT_LE(max_rel_diff(a, r), kTolerance);
  std::vector<double> t;
  ours.getPerfProfile(t);  // BatchNorm and SiLU fused: both layers skipped
  std::vector<cv::String> names = ours.getLayerNames();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] != "conv") {
      EXPECT_EQ(t[i], 0.0) << names[i] << " ran on its own";
    }
  // A second forward at another input size re-finalizes and re-fuses from the original weights.
  const cv::Mat in2 = random_mat({1, 8, 7, 9}, 1.f, rng);
  ours.setInput(in2);
  ref.setInput(in2);
  const cv::Mat a2 = ours.forward().clone(), r2 = ref.forward().clone();
  EXPECT_LE(max_rel_diff(a2, r2), kTolerance);
}

// The residual Add folded into the output loop (adapter's fuse_residual_adds): act(conv) + skip, on every
// shape class, in-place tiles and scattered ones (odd widths, tails), batch 2 with gaps between images.
TEST_P(ConvVsOpenCV, ResidualAddedAfterTheActivation) {
  std::mt19937 rng(17);
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    const auto& s = c.s;
    const int cig = s.in_channels / s.groups;
    const float wscale = 1.f / std::sqrt(static_cast<float>(cig * s.kernel_h * s.kernel_w));
    const cv::Mat w = random_mat({s.out_channels, cig, s.kernel_h, s.kernel_w}, wscale, rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const cv::Mat ref = opencv_conv(s, w, b, in);
    const cv::Mat skip = random_mat({ref.size[0], ref.size[1], ref.size[2], ref.size[3]}, 3.f, rng);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), GetParam());
    std::vector<float> ws(conv.workspace_floats(c.h, c.w));
    const std::ptrdiff_t in_b = static_cast<std::ptrdiff_t>(s.in_channels) * c.h * c.w;
    const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(skip.total() / c.n), gap = 3;
    std::vector<float> res(static_cast<std::size_t>(c.n * (out_b + gap)), 1e6f);  // gaps: never read
    for (int i = 0; i < c.n; ++i)
      std::copy(skip.ptr<float>() + i * out_b, skip.ptr<float>() + (i + 1) * out_b,
                res.begin() + i * (out_b + gap));
    for (auto act : {ConvActivation::None, ConvActivation::SiLU}) {
      SCOPED_TRACE(static_cast<int>(act));
      cv::Mat expect = activated(ref, act);
      expect += skip;
      cv::Mat got(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
      conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, got.ptr<float>(), out_b, act, ws.data(), ws.size(),
                   res.data(), out_b + gap);
      EXPECT_LE(max_rel_diff(got, expect), kTolerance);
    }
  }
}

// The fused node as the adapter leaves it: marked, a second input (the skip tensor), SiLU as an attribute.
// OpenCV offers no activation or BatchNorm after it (they would come after the Add).
TEST_P(ConvVsOpenCV, ResidualLayerInANet) {
  if (!aitw_convolution_active()) GTEST_SKIP() << "OpenCV's convolution runs on this CPU";
  std::mt19937 rng(23);
  const ConvShape s = shape(8, 12, 3, 1, 1);
  const cv::Mat w = random_mat({12, 8, 3, 3}, 0.2f, rng), b = random_mat({12}, 0.5f, rng);
  const cv::Mat x = random_mat({2, 8, 10, 14}, 1.f, rng), skip = random_mat({2, 12, 10, 14}, 1.f, rng);
  auto lp = conv_params(s, w, b);
  lp.set(kConvolutionMark, 1);
  lp.set(kConvResidualMark, 1);
  lp.set(kConvActivationAttr, "silu");
  cv::dnn::Net net;
  net.setInputsNames({"x", "skip"});
  const int id = net.addLayer(lp.name, lp.type, lp);
  net.connect(0, 0, id, 0);
  net.connect(0, 1, id, 1);
  // A per-channel affine after the Add: OpenCV offers it to the convolution (tryFuse), which must refuse.
  cv::dnn::LayerParams sc;
  sc.name = "scale";
  sc.type = "Scale";
  sc.set("bias_term", true);
  const cv::Mat gamma = random_mat({12}, 1.f, rng), beta = random_mat({12}, 1.f, rng);
  sc.blobs = {gamma.reshape(1, 1), beta.reshape(1, 1)};
  net.addLayerToPrev(sc.name, sc.type, sc);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setInput(x, "x");
  net.setInput(skip, "skip");
  ASSERT_TRUE(is_aitw_convolution(net.getLayer(id)));
  const cv::Mat got = net.forward().clone();
  cv::Mat expect = opencv_conv(s, w, b, x);
  silu(expect.ptr<float>(), expect.ptr<float>(), expect.total());
  expect += skip;
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 12; ++c) {
      float* p = expect.ptr<float>() + (i * 12 + c) * 140;
      for (int k = 0; k < 140; ++k) p[k] = p[k] * gamma.at<float>(c) + beta.at<float>(c);
    }
  EXPECT_LE(max_rel_diff(got, expect), kTolerance);

  auto layer = create_convolution_layer(lp);
  cv::dnn::LayerParams rp;
  auto relu = cv::dnn::ReLULayer::create(rp);
  EXPECT_FALSE(layer->setActivation(relu));
  // A skip tensor of another shape (an Add that broadcasts) is refused at load with the layer's name.
  cv::dnn::Net bad;
  bad.setInputsNames({"x", "skip"});
  const int bid = bad.addLayer(lp.name, lp.type, lp);
  bad.connect(0, 0, bid, 0);
  bad.connect(0, 1, bid, 1);
  bad.setInput(x, "x");
  bad.setInput(random_mat({2, 12, 1, 1}, 1.f, rng), "skip");
  EXPECT_THROW(bad.forward(), cv::Exception);
}

// Inputs read in place (a Concat's inputs, a Split's channel ranges): the channels split over up to three
// tensors, each a channel range inside a larger tensor with its own batch stride, and the skip tensor a
// range of another: bit for bit what the concatenated input gives (same products, same order).
// bf16 too where the CPU has it (the AVX-512 level): its tiles read channel pairs, which a pair split across
// two inputs must build the same way.
TEST_P(ConvVsOpenCV, InputsReadInPlaceGiveExactlyTheConcatenation) {
  std::mt19937 rng(29);
  std::vector<ConvPrecision> precisions{ConvPrecision::Fp32};
  if (GetParam() == ConvIsa::Avx512 && conv_bf16_supported()) precisions.push_back(ConvPrecision::Bf16);
  for (const auto precision : precisions)
    for (const auto& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + (precision == ConvPrecision::Bf16 ? " bf16" : " fp32"));
      const auto& s = c.s;
      const int cig = s.in_channels / s.groups;
      const cv::Mat w = random_mat({s.out_channels, cig, s.kernel_h, s.kernel_w}, 0.3f, rng);
      const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
      const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
      PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), GetParam(), precision);
      std::vector<float> ws(conv.workspace_floats(c.h, c.w));
      const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w;
      const int oh = s.out_h(c.h), ow = s.out_w(c.w);
      const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(s.out_channels) * oh * ow;
      // Parts: [0, a), [a, b), [b, ci), empty ones dropped; each sits after `lead` other channels.
      const int ci = s.in_channels, a = ci / 3, bnd = 2 * ci / 3;
      std::vector<std::pair<int, int>> parts;
      for (auto [f, e] : {std::pair{0, a}, std::pair{a, bnd}, std::pair{bnd, ci}})
        if (e > f) parts.emplace_back(f, e);
      std::vector<std::vector<float>> holders;
      std::vector<ConvInput> inputs;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto [f, e] = parts[i];
        const int lead = static_cast<int>(i) + 1, total = lead + (e - f) + 2;
        holders.emplace_back(static_cast<std::size_t>(c.n * total * plane), 1e6f);
        for (int k = 0; k < c.n; ++k)
          std::copy(in.ptr<float>() + (k * ci + f) * plane, in.ptr<float>() + (k * ci + e) * plane,
                    holders.back().begin() + (k * total + lead) * plane);
        inputs.push_back({holders.back().data() + lead * plane, total * plane, e - f});
      }
      const std::ptrdiff_t skip_b = out_b + 3 * static_cast<std::ptrdiff_t>(oh) * ow;  // 3 channels lead
      const cv::Mat skip = random_mat({c.n, static_cast<int>(skip_b)}, 1.f, rng);
      for (const float* res : {static_cast<const float*>(nullptr), skip.ptr<float>() + 3 * oh * ow}) {
        for (auto act : {ConvActivation::None, ConvActivation::SiLU}) {
          SCOPED_TRACE(static_cast<int>(act));
          cv::Mat expect(std::vector<int>{c.n, s.out_channels, oh, ow}, CV_32F, cv::Scalar(-7));
          cv::Mat got = expect.clone();
          conv.forward(in.ptr<float>(), c.n, c.h, c.w, ci * plane, expect.ptr<float>(), out_b, act, ws.data(),
                       ws.size(), res, skip_b);
          conv.forward(inputs.data(), static_cast<int>(inputs.size()), c.n, c.h, c.w, got.ptr<float>(), out_b,
                       act, ws.data(), ws.size(), res, skip_b);
          EXPECT_EQ(aitw::testing::max_abs_diff(got, expect), 0.0);
        }
      }
      // Channel counts that do not add up, no input, too many: refused, nothing computed.
      std::vector<ConvInput> short_by_one = inputs;
      short_by_one.back().channels -= 1;
      if (short_by_one.back().channels == 0) short_by_one.pop_back();
      std::vector<float> out(static_cast<std::size_t>(c.n * out_b));
      EXPECT_THROW(conv.forward(short_by_one.data(), static_cast<int>(short_by_one.size()), c.n, c.h, c.w,
                                out.data(), out_b, ConvActivation::None, ws.data(), ws.size()),
                   std::invalid_argument);
      EXPECT_THROW(conv.forward(inputs.data(), 0, c.n, c.h, c.w, out.data(), out_b, ConvActivation::None,
                                ws.data(), ws.size()),
                   std::invalid_argument);
      std::vector<ConvInput> many(kMaxConvInputs + 1, inputs[0]);
      EXPECT_THROW(conv.forward(many.data(), static_cast<int>(many.size()), c.n, c.h, c.w, out.data(), out_b,
                                ConvActivation::None, ws.data(), ws.size()),
                   std::invalid_argument);
    }
}

// Winograd F(4x4, 3x3), forced on for every 3x3 stride-1 padding-1 shape: heights and widths that are no
// multiple of 4 (the last tile row and column partly outside), rows of tiles no multiple of a vector, fewer
// output channels than a GEMM block and a partial last block, one pixel, batch 2, many channels; at the
// default thread count and at one (bands of tile rows, or one band whose output-channel blocks the threads
// share), with each activation, a residual, and the input as three tensors read in place (bit for bit the
// same). Same
// tolerance as the direct paths: F(4x4, 3x3)'s transforms multiply by up to 8 and 1/6, which loses a few
// more bits than a direct sum (<= 1.3e-5 relative on YOLO11n's shapes in the prototype), well inside 1e-4;
// a wrong tap, tile or edge is off by 0.1 or more.
TEST_P(ConvVsOpenCV, WinogradEveryShapeClass) {
  struct WCase {
    int ci, co, n, h, w;
  };
  const WCase wcases[] = {{16, 16, 1, 24, 40},  {5, 11, 1, 9, 13},   {7, 9, 1, 1, 1},
                          {8, 13, 1, 2, 3},     {12, 20, 1, 17, 70}, {64, 20, 1, 60, 80},
                          {16, 37, 1, 33, 130}, {40, 24, 1, 64, 64}, {10, 14, 2, 7, 19},
                          {256, 20, 1, 20, 30}, {3, 8, 1, 5, 68}};
  std::mt19937 rng(31);
  const int threads = cv::getNumThreads();
  struct Restore {  // also when an assertion returns early: later tests run unforced, at the thread count
    int threads;
    ~Restore() {
      conv_force_winograd(std::nullopt);
      conv_force_winograd_rows(std::nullopt);
      cv::setNumThreads(threads);
    }
  } restore{threads};
  conv_force_winograd(true);
  // F(4x4) and F(6x4) (tiles of 6 rows: last tile rows of 1-5 rows at heights 1, 2, 7, 9, 17, 20, 33, 64).
  for (const int tile_rows : {4, 6})
    for (const int t : {threads, 1}) {
      conv_force_winograd_rows(tile_rows);
      cv::setNumThreads(t);
      for (const auto& c : wcases) {
        SCOPED_TRACE(std::to_string(c.ci) + "->" + std::to_string(c.co) + " n " + std::to_string(c.n) + " " +
                     std::to_string(c.h) + "x" + std::to_string(c.w) + " threads " + std::to_string(t) +
                     " tile rows " + std::to_string(tile_rows));
        const ConvShape s = shape(c.ci, c.co, 3, 1, 1);
        const cv::Mat w = random_mat({c.co, c.ci, 3, 3}, 1.f / std::sqrt(9.f * c.ci), rng);
        const cv::Mat b = random_mat({c.co}, 0.5f, rng);
        const cv::Mat in = random_mat({c.n, c.ci, c.h, c.w}, 2.f, rng);
        const cv::Mat ref = opencv_conv(s, w, b, in);
        const cv::Mat skip = random_mat({c.n, c.co, c.h, c.w}, 3.f, rng);
        PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), GetParam());
        ASSERT_TRUE(conv.winograd(c.h, c.w));
        std::vector<float> ws(conv.workspace_floats(c.h, c.w));
        const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w, in_b = c.ci * plane,
                             out_b = c.co * plane, gap = 5;
        // The input as three tensors, each behind a leading channel.
        const int a = c.ci / 3, e = 2 * c.ci / 3;
        std::vector<std::vector<float>> holders;
        std::vector<ConvInput> parts;
        for (auto [f, l] : {std::pair{0, a}, std::pair{a, e}, std::pair{e, c.ci}}) {
          if (l == f) continue;
          holders.emplace_back(static_cast<std::size_t>(c.n * (l - f + 1) * plane), 1e6f);
          for (int k = 0; k < c.n; ++k)
            std::copy(in.ptr<float>() + (k * c.ci + f) * plane, in.ptr<float>() + (k * c.ci + l) * plane,
                      holders.back().begin() + (k * (l - f + 1) + 1) * plane);
          parts.push_back({holders.back().data() + plane, (l - f + 1) * plane, l - f});
        }
        for (auto act : {ConvActivation::None, ConvActivation::SiLU, ConvActivation::ReLU})
          for (const bool with_skip : {false, true}) {
            SCOPED_TRACE(std::to_string(static_cast<int>(act)) + (with_skip ? " residual" : ""));
            cv::Mat expect = activated(ref, act);
            if (with_skip) expect += skip;
            const float* res = with_skip ? skip.ptr<float>() : nullptr;
            std::vector<float> out(static_cast<std::size_t>(c.n * (out_b + gap)), -7.f);
            conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, out.data(), out_b + gap, act, ws.data(),
                         ws.size(), res, out_b);
            cv::Mat got = ungap(out, ref, c.n, out_b, gap);
            EXPECT_LE(max_rel_diff(got, expect), kTolerance);
            cv::Mat split(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
            conv.forward(parts.data(), static_cast<int>(parts.size()), c.n, c.h, c.w, split.ptr<float>(),
                         out_b, act, ws.data(), ws.size(), res, out_b);
            EXPECT_EQ(aitw::testing::max_abs_diff(split, got), 0.0);
          }
        // bf16 layers keep their own tiles, forced or not.
        if (GetParam() == ConvIsa::Avx512 && conv_bf16_supported()) {
          EXPECT_FALSE(PackedConv(s, w.ptr<float>(), b.ptr<float>(), GetParam(), ConvPrecision::Bf16)
                           .winograd(c.h, c.w));
        }
      }
    }
  cv::setNumThreads(threads);
  conv_force_winograd_rows(std::nullopt);
  conv_force_winograd(false);
  EXPECT_FALSE(PackedConv(shape(64, 64, 3, 1, 1), std::vector<float>(64 * 64 * 9).data(), nullptr, GetParam())
                   .winograd(60, 80));
  conv_force_winograd(std::nullopt);
  // Never for other shapes, forced or not.
  conv_force_winograd(true);
  for (const auto& other :
       {shape(64, 64, 3, 2, 1), shape(64, 64, 1, 1, 0), shape(64, 64, 3, 1, 1, 64), shape(64, 64, 3, 1, 0)}) {
    const std::vector<float> zeros(64 * 64 * 9);
    EXPECT_FALSE(PackedConv(other, zeros.data(), nullptr, GetParam()).winograd(60, 80));
  }
  conv_force_winograd(std::nullopt);
}

// bf16 (AVX512_BF16): every shape class against OpenCV's fp32 convolution. Tolerance 1e-2 x max(1, max
// |OpenCV|): bf16 keeps 8 significant bits, so each weight and input is off by up to 2^-9 of itself; over
// K products of random sign the error grows like sqrt(K), as the output does (weights ~1/sqrt(K)): measured
// <= 3e-3 here. A wrong tap, pair or tail is off by 0.1 or more. Depthwise layers stay fp32 (checked), and
// so does everything on a CPU without AVX512_BF16 (then the fp32 tolerance holds).
TEST(ConvBf16, EveryShapeClassAgainstOpenCvsFp32) {
  register_dnn_layers();
  const bool bf16 = conv_bf16_supported();
  const ConvIsa isa = conv_isa_supported(ConvIsa::Avx512) ? ConvIsa::Avx512 : conv_best_isa();
  std::mt19937 rng(37);
  double worst = 0;
  // bf16's 1x1 tiles write in place wherever the band drops no columns: on the whole small image (the
  // cases above) and, past 1 MB of input, band by band (these two, whose bands pack their channel pairs
  // straight from the input rows; the last band is partial, and 21 channels leave the last pair half empty).
  std::vector<Case> all = cases();
  all.push_back({"1x1_many_outputs_banded", shape(20, 66, 1, 1, 0), 2, 110, 121});
  all.push_back({"1x1_odd_inputs_banded", shape(21, 70, 1, 1, 0), 1, 110, 121});
  // A whole small image of many tiles (19 of 48 pixels, the last of 35): each unit packs its own tiles'
  // pairs.
  all.push_back({"1x1_units_pack_their_tiles", shape(21, 70, 1, 1, 0), 2, 29, 31});
  for (const auto& c : all) {
    SCOPED_TRACE(c.name);
    const auto& s = c.s;
    const int cig = s.in_channels / s.groups;
    const float wscale = 1.f / std::sqrt(static_cast<float>(cig * s.kernel_h * s.kernel_w));
    const cv::Mat w = random_mat({s.out_channels, cig, s.kernel_h, s.kernel_w}, wscale, rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const cv::Mat ref = opencv_conv(s, w, b, in);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), isa, ConvPrecision::Bf16);
    EXPECT_EQ(conv.precision(), bf16 && conv_bf16_pays(s) ? ConvPrecision::Bf16 : ConvPrecision::Fp32);
    EXPECT_EQ(conv_bf16_pays(s), !s.depthwise());
    std::vector<float> ws(conv.workspace_floats(c.h, c.w));
    const std::ptrdiff_t in_b = static_cast<std::ptrdiff_t>(s.in_channels) * c.h * c.w;
    const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(ref.total() / c.n);
    const cv::Mat skip = random_mat({ref.size[0], ref.size[1], ref.size[2], ref.size[3]}, 1.f, rng);
    for (auto act : {ConvActivation::None, ConvActivation::SiLU}) {
      for (const bool with_skip : {false, true}) {
        cv::Mat expect = activated(ref, act);
        if (with_skip) expect += skip;
        cv::Mat got(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
        conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, got.ptr<float>(), out_b, act, ws.data(), ws.size(),
                     with_skip ? skip.ptr<float>() : nullptr, out_b);
        const double d = max_rel_diff(got, expect);
        EXPECT_LE(d, conv.precision() == ConvPrecision::Bf16 ? 1e-2 : kTolerance)
            << static_cast<int>(act) << " skip " << with_skip;
        if (conv.precision() == ConvPrecision::Bf16) worst = std::max(worst, d);
      }
    }
  }
  RecordProperty("bf16_max_rel_diff", std::to_string(worst));
  if (bf16) {
    EXPECT_GT(worst, 1e-4);  // bf16 did run: fp32 agrees to ~1e-6
  }
}

// bf16 3x3 tiles over output channels pack the input's channel pairs band by band, each unit into its
// thread's buffer (its band's input rows and their halo): the bands follow the thread count (4 per thread),
// the output must not. Stride 1 and 2, odd heights and widths (the pixel-by-pixel column), an odd channel
// count (the last pair half empty), a partial output block, batch 2, the residual, a row per band;
// 1, 2, 3 and 5 threads bit for bit, and OpenCV's fp32 convolution within bf16's tolerance.
TEST(ConvBf16, BandsOfPairsFollowTheThreadsNotTheOutput) {
  if (!conv_bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16: no bf16 tiles to compare";
  register_dnn_layers();
  std::mt19937 rng(43);
  const int threads = cv::getNumThreads();
  struct Restore {
    int threads;
    ~Restore() { cv::setNumThreads(threads); }
  } restore{threads};
  const std::vector<Case> shapes = {{"s1", shape(33, 40, 3, 1, 1), 2, 37, 45},
                                    {"s2", shape(16, 32, 3, 2, 1), 1, 61, 83},
                                    {"s2_even", shape(24, 64, 3, 2, 1), 1, 40, 64},
                                    {"s1_few_rows", shape(32, 48, 3, 1, 1), 1, 3, 21},
                                    {"s2_one_row", shape(18, 32, 3, 2, 1), 1, 1, 30}};
  for (const auto& c : shapes) {
    const auto& s = c.s;
    const cv::Mat w =
        random_mat({s.out_channels, s.in_channels, 3, 3}, 1.f / std::sqrt(9.f * s.in_channels), rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const cv::Mat ref = opencv_conv(s, w, b, in);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), ConvIsa::Avx512, ConvPrecision::Bf16);
    ASSERT_EQ(conv.precision(), ConvPrecision::Bf16);
    const std::ptrdiff_t in_b = static_cast<std::ptrdiff_t>(s.in_channels) * c.h * c.w,
                         out_b = static_cast<std::ptrdiff_t>(ref.total() / c.n);
    const cv::Mat skip = random_mat({ref.size[0], ref.size[1], ref.size[2], ref.size[3]}, 1.f, rng);
    std::vector<float> ws(conv.workspace_floats(c.h, c.w));
    for (const bool with_skip : {false, true}) {
      cv::Mat expect = activated(ref, ConvActivation::SiLU);
      if (with_skip) expect += skip;
      cv::Mat first;
      for (const int t : {1, 2, 3, 5}) {
        SCOPED_TRACE(std::string(c.name) + " threads " + std::to_string(t) + " skip " +
                     std::to_string(with_skip));
        cv::setNumThreads(t);
        cv::Mat got(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
        conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, got.ptr<float>(), out_b, ConvActivation::SiLU,
                     ws.data(), ws.size(), with_skip ? skip.ptr<float>() : nullptr, out_b);
        EXPECT_LE(max_rel_diff(got, expect), 1e-2);
        if (first.empty()) {
          first = got;
        } else {
          EXPECT_EQ(0, std::memcmp(first.ptr<float>(), got.ptr<float>(), first.total() * sizeof(float)));
        }
      }
    }
  }
}

// bf16 1x1 on a small image of many tiles (the shared path, 8+ tiles per thread): each unit packs its own
// tiles' channel pairs. At 1, 2 and 3 threads (the units follow the thread count; at 3, 19 tiles are few and
// the whole image is packed first): the same output bit for bit, and OpenCV's within bf16's tolerance. Two
// inputs of odd channel counts (a Concat read in place: a pair across them, the last pair half empty), batch
// 2, a partial last tile and output block; and an unpadded 3x3, whose tiles read rows below their own, which
// must not take that path.
TEST(ConvBf16, UnitsPackTheirOwnTilesAtAnyThreadCount) {
  if (!conv_bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16: no bf16 tiles to compare";
  register_dnn_layers();
  std::mt19937 rng(47);
  const int threads = cv::getNumThreads();
  struct Restore {
    int threads;
    ~Restore() { cv::setNumThreads(threads); }
  } restore{threads};
  const std::vector<Case> shapes = {{"1x1", shape(21, 70, 1, 1, 0), 2, 29, 31},
                                    {"3x3_unpadded", shape(21, 32, 3, 1, 0), 1, 31, 33}};
  for (const auto& c : shapes) {
    const auto& s = c.s;
    const int taps = s.kernel_h * s.kernel_w;
    const cv::Mat w = random_mat({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w},
                                 1.f / std::sqrt(static_cast<float>(taps * s.in_channels)), rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const cv::Mat ref = opencv_conv(s, w, b, in);
    const cv::Mat expect = activated(ref, ConvActivation::SiLU);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), ConvIsa::Avx512, ConvPrecision::Bf16);
    ASSERT_EQ(conv.precision(), ConvPrecision::Bf16);
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w, in_b = s.in_channels * plane,
                         out_b = static_cast<std::ptrdiff_t>(ref.total() / c.n);
    // The input in two parts of 9 and 12 channels, each in its own buffer.
    std::vector<float> a(static_cast<std::size_t>(c.n * in_b)), z(a.size());
    for (int i = 0; i < c.n; ++i) {
      std::copy_n(in.ptr<float>() + i * in_b, 9 * plane, a.data() + i * in_b);
      std::copy_n(in.ptr<float>() + i * in_b + 9 * plane, (s.in_channels - 9) * plane, z.data() + i * in_b);
    }
    const ConvInput parts[2] = {{a.data(), in_b, 9}, {z.data(), in_b, s.in_channels - 9}};
    cv::Mat first;
    for (const int t : {1, 2, 3}) {
      SCOPED_TRACE(std::string(c.name) + " threads " + std::to_string(t));
      cv::setNumThreads(t);
      std::vector<float> ws(conv.workspace_floats(c.h, c.w));
      cv::Mat got(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
      conv.forward(parts, 2, c.n, c.h, c.w, got.ptr<float>(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size());
      EXPECT_LE(max_rel_diff(got, expect), 1e-2);
      if (first.empty()) {
        first = got;
      } else {
        EXPECT_EQ(0, std::memcmp(first.ptr<float>(), got.ptr<float>(), first.total() * sizeof(float)));
      }
    }
  }
}

// n images `image` floats apart of `c` channels of `plane` floats -> pairs, laid out the same; the floats
// past each image's pair planes are NaN (a kernel that read them would spread it).
std::vector<float> to_pairs(const float* x, int n, int c, std::ptrdiff_t plane, std::ptrdiff_t image) {
  std::vector<float> p(static_cast<std::size_t>(n * image), std::numeric_limits<float>::quiet_NaN());
  for (int b = 0; b < n; ++b)
    for (int q = 0; q < (c + 1) / 2; ++q)
      for (std::ptrdiff_t i = 0; i < plane; ++i) {
        const std::uint32_t lo = bf16_bits(x[b * image + 2 * q * plane + i]),
                            hi = 2 * q + 1 < c ? bf16_bits(x[b * image + (2 * q + 1) * plane + i]) : 0u;
        const std::uint32_t word = lo | hi << 16;
        std::memcpy(&p[static_cast<std::size_t>(b * image + q * plane + i)], &word, sizeof word);
      }
  return p;
}
// Whether the (c + 1) / 2 pair planes of each of n images (c * plane floats apart) are the same.
bool same_pairs(const std::vector<float>& a, const float* b, int n, int c, std::ptrdiff_t plane) {
  for (int i = 0; i < n; ++i)
    if (std::memcmp(a.data() + i * c * plane, b + i * c * plane, sizeof(float) * ((c + 1) / 2) * plane))
      return false;
  return true;
}

// Channel pairs between bf16 layers (ConvInput::pairs, forward's out_pairs): a bf16 convolution rounds its
// fp32 input to bf16 pairs before it multiplies, so reading the pairs a producer wrote gives the same output
// bit for bit, and a producer writing pairs writes exactly the pairs of its fp32 output. The reference pairs
// are rounded here (to nearest even, as vcvtneps2bf16), not by the kernels. Every path the bf16 kernels take:
// tiles over output channels (stride 1 and 2, one pixel at a time), bands (the stem's 3 -> 16 stride 2 at
// 480 x 640, a 1x1 on a large image, whose bands read an input of pairs in place but for the last, a
// padded 3x3 whose bands drop columns), a small image shared by units of
// tiles or of blocks, tiles with dropped columns on a small image (an unpadded 3x3);
// odd channel counts (the last pair's high half 0), two images, 1 to 3 threads, an input in two parts, a
// residual added.
TEST(ConvBf16, ChannelPairsInAndOutAreThePairsOfTheFp32Tensors) {
  if (!conv_bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16: no bf16 tiles to compare";
  std::mt19937 rng(53);
  const int threads = cv::getNumThreads();
  struct Restore {
    int threads;
    ~Restore() { cv::setNumThreads(threads); }
  } restore{threads};
  const std::vector<Case> cases = {
      {"oc_s1", shape(21, 69, 3, 1, 1), 2, 13, 27},
      {"oc_s2", shape(16, 40, 3, 2, 1), 2, 17, 23},
      {"oc_narrow", shape(12, 48, 3, 1, 1), 1, 5, 7},
      {"band_stem", shape(3, 16, 3, 2, 1), 1, 480, 640},
      {"band_1x1", shape(32, 81, 1, 1, 0), 1, 100, 120},
      {"shared_1x1", shape(21, 70, 1, 1, 0), 2, 29, 31},
      {"few_1x1", shape(22, 96, 1, 1, 0), 2, 9, 11},
      {"3x3_unpadded", shape(21, 33, 3, 1, 0), 1, 31, 33},
      // Bands of a padded 3x3 off the tiles over output channels (24 outputs): dropped columns within a band.
      {"band_3x3", shape(16, 24, 3, 1, 1), 1, 120, 160}};
  for (const auto& c : cases) {
    const auto& s = c.s;
    const int taps = s.kernel_h * s.kernel_w;
    const cv::Mat w = random_mat({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w},
                                 1.f / std::sqrt(static_cast<float>(taps * s.in_channels)), rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), ConvIsa::Avx512, ConvPrecision::Bf16);
    ASSERT_EQ(conv.precision(), ConvPrecision::Bf16) << c.name;
    const int oh = s.out_h(c.h), ow = s.out_w(c.w);
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w, in_b = s.in_channels * plane,
                         oplane = static_cast<std::ptrdiff_t>(oh) * ow, out_b = s.out_channels * oplane;
    const std::vector<float> in_pairs = to_pairs(in.ptr<float>(), c.n, s.in_channels, plane, in_b);
    // The input in two parts: `split` fp32 channels (an even count), then the rest as pairs.
    const int split = s.in_channels > 10 ? 10 : 2;
    std::vector<float> head(static_cast<std::size_t>(c.n * in_b)), tail_fp32(head.size());
    for (int i = 0; i < c.n; ++i) {
      std::copy_n(in.ptr<float>() + i * in_b, split * plane, head.data() + i * in_b);
      std::copy_n(in.ptr<float>() + i * in_b + split * plane, (s.in_channels - split) * plane,
                  tail_fp32.data() + i * in_b);
    }
    const std::vector<float> tail_pairs = to_pairs(tail_fp32.data(), c.n, s.in_channels - split, plane, in_b);
    for (const int t : {1, 2, 3}) {
      SCOPED_TRACE(std::string(c.name) + " threads " + std::to_string(t));
      cv::setNumThreads(t);
      std::vector<float> ws(conv.workspace_floats(c.h, c.w));
      std::vector<float> ref(static_cast<std::size_t>(c.n * out_b));
      conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, ref.data(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size());
      const std::vector<float> ref_pairs = to_pairs(ref.data(), c.n, s.out_channels, oplane, out_b);
      const ConvInput fp32_in{in.ptr<float>(), in_b, s.in_channels},
          pairs_in{in_pairs.data(), in_b, s.in_channels, true};
      const ConvInput parts[2] = {{head.data(), in_b, split},
                                  {tail_pairs.data(), in_b, s.in_channels - split, true}};
      std::vector<float> got(ref.size(), -7.f);
      conv.forward(&pairs_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size());
      EXPECT_EQ(got, ref) << "pairs in";
      // The pairs alone, each image's planes packed tight and the buffer ending with the last one: a tile
      // that read past its plane would read past the buffer (reported by the AddressSanitizer build).
      const std::ptrdiff_t tight = (s.in_channels + 1) / 2 * plane;
      std::vector<float> exact(static_cast<std::size_t>(c.n * tight));
      for (int i = 0; i < c.n; ++i) std::copy_n(in_pairs.data() + i * in_b, tight, exact.data() + i * tight);
      const ConvInput exact_in{exact.data(), tight, s.in_channels, true};
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(&exact_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size());
      EXPECT_EQ(got, ref) << "pairs in, planes packed tight";
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(parts, 2, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size());
      EXPECT_EQ(got, ref) << "fp32 and pairs in";
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(&fp32_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size(),
                   nullptr, 0, nullptr, true);
      EXPECT_TRUE(same_pairs(ref_pairs, got.data(), c.n, s.out_channels, oplane)) << "pairs out";
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(&pairs_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size(),
                   nullptr, 0, nullptr, true);
      EXPECT_TRUE(same_pairs(ref_pairs, got.data(), c.n, s.out_channels, oplane)) << "pairs in and out";
      // A fused Add's residual: added to the fp32 output before the rounding.
      const cv::Mat skip = random_mat({c.n, s.out_channels, oh, ow}, 1.f, rng);
      conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, ref.data(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size(), skip.ptr<float>(), out_b);
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(&pairs_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size(),
                   skip.ptr<float>(), out_b, nullptr, true);
      EXPECT_TRUE(same_pairs(to_pairs(ref.data(), c.n, s.out_channels, oplane, out_b), got.data(), c.n,
                             s.out_channels, oplane))
          << "pairs out with a residual";
      // The residual as pairs (residual_pairs): the output of the fp32 residual of the values they hold, bit
      // for bit, written as floats or as pairs. An odd count's last high half is no channel: poisoned (NaN)
      // here, it must not be read.
      std::vector<float> skip_pairs = to_pairs(skip.ptr<float>(), c.n, s.out_channels, oplane, out_b),
                         skip_values(static_cast<std::size_t>(c.n * out_b));
      for (int i = 0; i < c.n; ++i)
        for (int q = 0; q < s.out_channels; ++q)
          for (std::ptrdiff_t p = 0; p < oplane; ++p) {
            std::uint32_t word;
            std::memcpy(&word, &skip_pairs[static_cast<std::size_t>(i * out_b + q / 2 * oplane + p)], 4);
            word = q % 2 ? word & 0xffff0000u : word << 16;
            std::memcpy(&skip_values[static_cast<std::size_t>(i * out_b + q * oplane + p)], &word, 4);
            if (q % 2 == 0 && q + 1 == s.out_channels) {
              word = (word >> 16) | 0x7fc00000u;
              std::memcpy(&skip_pairs[static_cast<std::size_t>(i * out_b + q / 2 * oplane + p)], &word, 4);
            }
          }
      conv.forward(in.ptr<float>(), c.n, c.h, c.w, in_b, ref.data(), out_b, ConvActivation::SiLU, ws.data(),
                   ws.size(), skip_values.data(), out_b);
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(&pairs_in, 1, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size(),
                   skip_pairs.data(), out_b, nullptr, false, true);
      EXPECT_EQ(got, ref) << "a residual of pairs";
      std::fill(got.begin(), got.end(), -7.f);
      conv.forward(parts, 2, c.n, c.h, c.w, got.data(), out_b, ConvActivation::SiLU, ws.data(), ws.size(),
                   skip_pairs.data(), out_b, nullptr, true, true);
      EXPECT_TRUE(same_pairs(to_pairs(ref.data(), c.n, s.out_channels, oplane, out_b), got.data(), c.n,
                             s.out_channels, oplane))
          << "pairs out with a residual of pairs";
    }
  }
}

// An fp32 depthwise 3x3 reads and writes pairs (conv_fp32_pairs): reading them it computes on the input they
// hold (the bf16 rounding of the fp32 one: the same output bit for bit as from that rounding in fp32),
// writing them it rounds its fp32 output (the pairs of that output bit for bit). The reference is the same
// convolution on fp32 tensors, the pairs made here (to_pairs). Both depthwise paths: rows (60 x 80) and flat
// (15 x 20, 30 x 41), one channel pair split into bands of rows (few channels), an odd channel count (the
// last pair's high half 0), two images, a residual added before the rounding, 1 to 3 threads, SiLU and none.
TEST(ConvBf16, Fp32DepthwiseReadsAndWritesPairs) {
  if (!conv_bf16_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16: no channel pairs";
  std::mt19937 rng(67);
  struct Restore {
    int threads;
    ~Restore() { cv::setNumThreads(threads); }
  } restore{cv::getNumThreads()};
  const std::vector<Case> cases = {{"rows", shape(64, 64, 3, 1, 1, 64), 1, 60, 80},
                                   {"flat", shape(80, 80, 3, 1, 1, 80), 2, 15, 20},
                                   {"one_pair_in_bands", shape(2, 2, 3, 1, 1, 2), 1, 60, 80},
                                   {"odd_channels", shape(7, 7, 3, 1, 1, 7), 2, 30, 41}};
  for (const auto& c : cases) {
    const auto& s = c.s;
    ASSERT_TRUE(conv_fp32_pairs(s, ConvIsa::Avx512)) << c.name;
    const cv::Mat w = random_mat({s.out_channels, 1, 3, 3}, 0.3f, rng);
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w, image = s.in_channels * plane;
    const std::vector<float> skip = [&] {
      const cv::Mat m = random_mat({c.n, s.in_channels, c.h, c.w}, 1.f, rng);
      return std::vector<float>(m.ptr<float>(), m.ptr<float>() + c.n * image);
    }();
    // The input as pairs, and the fp32 tensor they hold.
    const std::vector<float> in_pairs = to_pairs(in.ptr<float>(), c.n, s.in_channels, plane, image);
    std::vector<float> rounded(static_cast<std::size_t>(c.n * image));
    for (int i = 0; i < c.n; ++i)
      for (int ch = 0; ch < s.in_channels; ++ch)
        for (std::ptrdiff_t q = 0; q < plane; ++q) {
          std::uint32_t word;
          std::memcpy(&word, &in_pairs[static_cast<std::size_t>(i * image + ch / 2 * plane + q)],
                      sizeof word);
          const std::uint32_t bits = ch % 2 ? word & 0xffff0000u : word << 16;
          std::memcpy(&rounded[static_cast<std::size_t>(i * image + ch * plane + q)], &bits, sizeof bits);
        }
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), ConvIsa::Avx512, ConvPrecision::Bf16);
    ASSERT_EQ(conv.precision(), ConvPrecision::Fp32);
    for (const auto act : {ConvActivation::SiLU, ConvActivation::None})
      for (const bool residual : {false, true})
        for (const int t : {1, 2, 3}) {
          SCOPED_TRACE(std::string(c.name) + " threads " + std::to_string(t) +
                       (act == ConvActivation::None ? " no activation" : " SiLU") +
                       (residual ? " residual" : ""));
          cv::setNumThreads(t);
          const float* res = residual ? skip.data() : nullptr;
          const std::ptrdiff_t rs = residual ? image : 0;
          std::vector<float> ws(conv.workspace_floats(c.h, c.w));
          const auto run = [&](const float* x, bool pairs_in, bool pairs_out) {
            std::vector<float> out(static_cast<std::size_t>(c.n * image), -7.f);
            const ConvInput input{x, image, s.in_channels, pairs_in};
            conv.forward(&input, 1, c.n, c.h, c.w, out.data(), image, act, ws.data(), ws.size(), res, rs,
                         nullptr, pairs_out);
            return out;
          };
          const std::vector<float> ref = run(in.ptr<float>(), false, false);
          const std::vector<float> ref_rounded = run(rounded.data(), false, false);
          EXPECT_EQ(run(in_pairs.data(), true, false), ref_rounded) << "pairs in";
          const std::vector<float> out = run(in.ptr<float>(), false, true);
          EXPECT_TRUE(same_pairs(to_pairs(ref.data(), c.n, s.out_channels, plane, image), out.data(), c.n,
                                 s.out_channels, plane))
              << "pairs out";
          // Nothing past the pair planes is written.
          for (int i = 0; i < c.n; ++i)
            for (std::ptrdiff_t q = (s.out_channels + 1) / 2 * plane; q < image; ++q)
              if (out[static_cast<std::size_t>(i * image + q)] != -7.f) {
                ADD_FAILURE() << "image " << i << ": float " << q << " past the pair planes written";
                break;
              }
          EXPECT_TRUE(same_pairs(to_pairs(ref_rounded.data(), c.n, s.out_channels, plane, image),
                                 run(in_pairs.data(), true, true).data(), c.n, s.out_channels, plane))
              << "pairs in and out";
          // Two inputs (a Concat read in place), pairs and plain floats in either order: the channels read
          // as pairs are the rounded ones.
          const int k = (s.in_channels / 2) & ~1;
          if (k == 0) continue;
          for (const bool pairs_first : {true, false}) {
            std::vector<float> mixed(static_cast<std::size_t>(c.n * image));
            for (int i = 0; i < c.n; ++i)
              for (int ch = 0; ch < s.in_channels; ++ch) {
                const std::size_t o = static_cast<std::size_t>(i * image + ch * plane);
                const float* from = (ch < k) == pairs_first ? rounded.data() + o : in.ptr<float>() + o;
                std::copy(from, from + plane, mixed.begin() + static_cast<std::ptrdiff_t>(o));
              }
            const ConvInput parts[2] = {
                pairs_first ? ConvInput{in_pairs.data(), image, k, true}
                            : ConvInput{in.ptr<float>(), image, k, false},
                pairs_first ? ConvInput{in.ptr<float>() + k * plane, image, s.in_channels - k, false}
                            : ConvInput{in_pairs.data() + k / 2 * plane, image, s.in_channels - k, true}};
            std::vector<float> out2(static_cast<std::size_t>(c.n * image), -7.f);
            conv.forward(parts, 2, c.n, c.h, c.w, out2.data(), image, act, ws.data(), ws.size(), res, rs,
                         nullptr, true);
            EXPECT_TRUE(same_pairs(
                to_pairs(run(mixed.data(), false, false).data(), c.n, s.out_channels, plane, image),
                out2.data(), c.n, s.out_channels, plane))
                << (pairs_first ? "pairs then floats" : "floats then pairs");
          }
        }
  }
}

// What pairs take, refused with the reason: a bf16 convolution, an even first channel, even counts before
// the last input.
TEST(ConvBf16, ChannelPairsRefuseWhatTheyCannotCarry) {
  std::mt19937 rng(59);
  const ConvShape s = shape(12, 96, 1, 1, 0);
  const cv::Mat w = random_mat({96, 12, 1, 1}, 0.3f, rng), in = random_mat({1, 12, 8, 8}, 1.f, rng);
  std::vector<float> out(96 * 64), res(96 * 64, 0.f);
  const auto run = [&](const PackedConv& conv, const ConvInput* inputs, int ninputs, const float* residual,
                       bool out_pairs) {
    std::vector<float> ws(conv.workspace_floats(8, 8));
    conv.forward(inputs, ninputs, 1, 8, 8, out.data(), 96 * 64, ConvActivation::None, ws.data(), ws.size(),
                 residual, residual ? 96 * 64 : 0, nullptr, out_pairs);
  };
  const ConvInput plain{in.ptr<float>(), 12 * 64, 12};
  const ConvInput pairs{in.ptr<float>(), 12 * 64, 12, true};
  const ConvIsa isa = conv_isa_supported(ConvIsa::Avx512) ? ConvIsa::Avx512 : conv_best_isa();
  PackedConv fp32(s, w.ptr<float>(), nullptr, isa, ConvPrecision::Fp32);
  // Pairs into or out of an fp32 convolution: a depthwise 3x3, stride 1, padding 1, on the AVX-512 kernels of
  // a CPU with AVX512_BF16 (conv_fp32_pairs); never a 1x1 or a full 3x3.
  EXPECT_FALSE(conv_fp32_pairs(s, isa));
  EXPECT_THROW(run(fp32, &pairs, 1, nullptr, false), std::invalid_argument);
  EXPECT_THROW(run(fp32, &plain, 1, nullptr, true), std::invalid_argument);
  const ConvShape s3 = shape(12, 96, 3, 1, 1);
  const cv::Mat w3 = random_mat({96, 12, 3, 3}, 0.3f, rng);
  EXPECT_FALSE(conv_fp32_pairs(s3, isa));
  PackedConv fp32_3x3(s3, w3.ptr<float>(), nullptr, isa, ConvPrecision::Fp32);
  EXPECT_THROW(run(fp32_3x3, &plain, 1, nullptr, true), std::invalid_argument);
  const ConvShape dw = shape(12, 12, 3, 1, 1, 12), dw_s2 = shape(12, 12, 3, 2, 1, 12);
  const cv::Mat wd = random_mat({12, 1, 3, 3}, 0.3f, rng);
  EXPECT_FALSE(conv_fp32_pairs(dw, ConvIsa::Avx2));
  EXPECT_FALSE(conv_fp32_pairs(dw_s2, ConvIsa::Avx512));
  EXPECT_EQ(conv_fp32_pairs(dw, ConvIsa::Avx512), conv_bf16_supported());
  for (const ConvIsa level : levels()) {
    SCOPED_TRACE(conv_isa_name(level));
    PackedConv depthwise(dw, wd.ptr<float>(), nullptr, level, ConvPrecision::Bf16);
    EXPECT_EQ(depthwise.precision(), ConvPrecision::Fp32);
    if (conv_fp32_pairs(dw, level)) {
      EXPECT_NO_THROW(run(depthwise, &pairs, 1, nullptr, true));
      EXPECT_NO_THROW(run(depthwise, &plain, 1, res.data(), true));
    } else {
      EXPECT_THROW(run(depthwise, &pairs, 1, nullptr, false), std::invalid_argument);
      EXPECT_THROW(run(depthwise, &plain, 1, nullptr, true), std::invalid_argument);
    }
  }
  if (!conv_bf16_supported()) return;
  PackedConv bf16(s, w.ptr<float>(), nullptr, ConvIsa::Avx512, ConvPrecision::Bf16);
  ASSERT_EQ(bf16.precision(), ConvPrecision::Bf16);
  EXPECT_NO_THROW(run(bf16, &pairs, 1, nullptr, true));
  EXPECT_NO_THROW(run(bf16, &plain, 1, res.data(), true));  // a fused Add's output as pairs
  // A residual of pairs: a bf16 convolution with a residual, not depthwise.
  const auto run_residual_pairs = [&](const PackedConv& conv, const float* residual) {
    std::vector<float> ws(conv.workspace_floats(8, 8));
    conv.forward(&plain, 1, 1, 8, 8, out.data(), 96 * 64, ConvActivation::None, ws.data(), ws.size(),
                 residual, residual ? 96 * 64 : 0, nullptr, false, true);
  };
  EXPECT_NO_THROW(run_residual_pairs(bf16, res.data()));
  EXPECT_THROW(run_residual_pairs(bf16, nullptr), std::invalid_argument);
  EXPECT_THROW(run_residual_pairs(fp32, res.data()), std::invalid_argument);
  PackedConv bf16_dw(dw, wd.ptr<float>(), nullptr, ConvIsa::Avx512, ConvPrecision::Bf16);
  std::vector<float> ws_dw(bf16_dw.workspace_floats(8, 8)), out_dw(12 * 64), res_dw(12 * 64, 0.f);
  EXPECT_THROW(bf16_dw.forward(&plain, 1, 1, 8, 8, out_dw.data(), 12 * 64, ConvActivation::None, ws_dw.data(),
                               ws_dw.size(), res_dw.data(), 12 * 64, nullptr, false, true),
               std::invalid_argument);
  const ConvInput odd_first[2] = {{in.ptr<float>(), 12 * 64, 5}, {in.ptr<float>(), 12 * 64, 7, true}};
  EXPECT_THROW(run(bf16, odd_first, 2, nullptr, false), std::invalid_argument);
  const ConvInput odd_count[2] = {{in.ptr<float>(), 12 * 64, 5, true}, {in.ptr<float>(), 12 * 64, 7}};
  EXPECT_THROW(run(bf16, odd_count, 2, nullptr, false), std::invalid_argument);
}

// A layer marked for channel pairs that would not run them (here fp32 asked; the same check refuses a CPU
// without AVX512_BF16, and OpenCV's convolution refuses the marks) refuses to load, naming the cause, instead
// of writing or reading pairs as floats.
TEST(ConvBf16, LayersMarkedForPairsRefuseToRunFp32) {
  register_dnn_layers();
  std::mt19937 rng(61);
  const ConvShape s = shape(16, 96, 3, 1, 1);
  const cv::Mat w = random_mat({96, 16, 3, 3}, 0.1f, rng), b = random_mat({96}, 0.1f, rng);
  for (const char* attr : {kConvPairsOutAttr, kConvPairsInAttr}) {
    SCOPED_TRACE(attr);
    cv::dnn::LayerParams lp = convolution_layer_params(s, w, b, true);
    lp.name = "marked";
    if (std::string(attr) == kConvPairsOutAttr)
      lp.set(attr, 1);
    else
      lp.set(attr, cv::dnn::DictValue::arrayInt(std::vector<int>{1}.data(), 1));
    try {
      create_convolution_layer(lp);
      ADD_FAILURE() << "an fp32 layer marked for pairs loaded";
    } catch (const cv::Exception& e) {
      EXPECT_NE(std::string(e.what()).find("pairs"), std::string::npos) << e.what();
    }
    if (!convolution_pairs_enabled()) continue;
    lp.set(kConvPrecisionAttr, "bf16");
    EXPECT_TRUE(is_aitw_convolution(create_convolution_layer(lp)));
  }
  // An fp32 depthwise 3x3 reads and writes pairs where the CPU has AVX512_BF16 (conv_fp32_pairs); elsewhere
  // it refuses them, naming the cause.
  const ConvShape sd = shape(16, 16, 3, 1, 1, 16);
  const cv::Mat wd = random_mat({16, 1, 3, 3}, 0.1f, rng), bd = random_mat({16}, 0.1f, rng);
  cv::dnn::LayerParams dw = convolution_layer_params(sd, wd, bd, true);
  dw.name = "depthwise";
  dw.set(kConvPrecisionAttr, "bf16");
  dw.set(kConvPairsOutAttr, 1);
  dw.set(kConvPairsInAttr, cv::dnn::DictValue::arrayInt(std::vector<int>{1}.data(), 1));
  std::string loaded;
  try {
    loaded = is_aitw_convolution(create_convolution_layer(dw)) ? "aitw" : "opencv";
  } catch (const cv::Exception& e) {
    loaded = e.what();
  }
  const std::string refused =
      "only a depthwise 3x3 of stride 1 and padding 1 on a CPU with AVX512_BF16 reads or "
      "writes them";
  if (conv_fp32_pairs(sd, conv_default_isa())) {
    EXPECT_EQ(loaded, "aitw");
  } else {
    EXPECT_NE(loaded.find(refused), std::string::npos) << loaded;
  }
  // A stride-2 depthwise (or one padded otherwise) runs fp32 without pairs on every CPU: marked, it refuses.
  for (const auto& [stride, pad] : {std::pair{2, 1}, std::pair{1, 0}}) {
    const ConvShape s2 = shape(16, 16, 3, stride, pad, 16);
    ASSERT_FALSE(conv_fp32_pairs(s2, conv_default_isa()));
    cv::dnn::LayerParams d2 = convolution_layer_params(s2, wd, bd, true);
    d2.name = "depthwise stride " + std::to_string(stride) + " padding " + std::to_string(pad);
    d2.set(kConvPrecisionAttr, "bf16");
    d2.set(kConvPairsInAttr, cv::dnn::DictValue::arrayInt(std::vector<int>{1}.data(), 1));
    try {
      create_convolution_layer(d2);
      ADD_FAILURE() << d2.name << " marked for pairs loaded";
    } catch (const cv::Exception& e) {
      EXPECT_NE(std::string(e.what()).find(refused), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(d2.name), std::string::npos) << e.what();
    }
  }
}

// A layer marked to read its fused Add's skip as pairs (kConvPairsInAttr's flag after the data inputs' ones),
// the skip a channel range of a larger tensor of pairs: bit for bit the layer with an fp32 skip holding the
// values of those pairs. Refused at load, naming the layer: a skip of pairs from an odd channel, on a layer
// that runs fp32, or a flag count that fits neither the data inputs nor them and the skip.
TEST(ConvBf16, ResidualOfPairsLayerInANet) {
  if (!convolution_pairs_enabled()) GTEST_SKIP() << "no bf16 convolutions on this CPU";
  register_dnn_layers();
  std::mt19937 rng(67);
  const ConvShape s = shape(8, 12, 3, 1, 1);
  const cv::Mat w = random_mat({12, 8, 3, 3}, 0.2f, rng), b = random_mat({12}, 0.5f, rng);
  const int h = 10, wd = 14, plane = h * wd, big = 17;  // the skip: channels 4..15 of 17
  const cv::Mat x = random_mat({2, 8, h, wd}, 1.f, rng), whole = random_mat({2, big, h, wd}, 1.f, rng);
  const std::vector<float> pairs = to_pairs(whole.ptr<float>(), 2, big, plane, big * plane);
  cv::Mat skip_pairs({2, big, h, wd}, CV_32F), skip_values({2, big, h, wd}, CV_32F, cv::Scalar(0));
  std::memcpy(skip_pairs.ptr<float>(), pairs.data(), sizeof(float) * pairs.size());
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < big; ++c)
      for (int p = 0; p < plane; ++p) {
        std::uint32_t word;
        std::memcpy(&word, &pairs[static_cast<std::size_t>((i * big + c / 2) * plane + p)], 4);
        word = c % 2 ? word & 0xffff0000u : word << 16;
        std::memcpy(skip_values.ptr<float>() + (i * big + c) * plane + p, &word, 4);
      }
  const auto params = [&](int first, const std::vector<int>& flags, bool bf16) {
    cv::dnn::LayerParams lp = convolution_layer_params(s, w, b, true);
    lp.name = "skip of pairs";
    lp.set(kConvResidualMark, 1);
    lp.set(kConvActivationAttr, "silu");
    const int ranges[4] = {0, -1, first, 12};
    lp.set(kConvInputsAttr, cv::dnn::DictValue::arrayInt(ranges, 4));
    if (bf16) lp.set(kConvPrecisionAttr, "bf16");
    if (!flags.empty())
      lp.set(kConvPairsInAttr, cv::dnn::DictValue::arrayInt(flags.data(), static_cast<int>(flags.size())));
    return lp;
  };
  const auto run = [&](const cv::dnn::LayerParams& lp, const cv::Mat& skip) {
    cv::dnn::Net net;
    net.setInputsNames({"x", "skip"});
    const int id = net.addLayer(lp.name, lp.type, const_cast<cv::dnn::LayerParams&>(lp));
    net.connect(0, 0, id, 0);
    net.connect(0, 1, id, 1);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setInput(x, "x");
    net.setInput(skip, "skip");
    EXPECT_TRUE(is_aitw_convolution(net.getLayer(id)));
    return net.forward().clone();
  };
  const cv::Mat expect = run(params(4, {}, true), skip_values),
                got = run(params(4, {0, 1}, true), skip_pairs);
  EXPECT_EQ(cv::norm(got, expect, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(run(params(4, {}, true), whole), expect, cv::NORM_INF), 0.0) << "the skip's rounding";
  const auto refused = [&](const cv::dnn::LayerParams& lp, const std::string& why) {
    try {
      auto copy = lp;
      create_convolution_layer(copy);
      ADD_FAILURE() << "loaded: " << why;
    } catch (const cv::Exception& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("skip of pairs"), std::string::npos) << e.what();
    }
  };
  refused(params(3, {0, 1}, true), "residual of bf16 channel pairs is read from odd channel 3");
  refused(params(4, {0, 1}, false), "read its residual as bf16 channel pairs");
  refused(params(4, {0, 1, 1}, true), "3 flags for 1 data inputs and a residual");
}

// int8-grid weights, as the shared models' (integers in [-127, 127] times the channel's max |w| / 127): in
// bf16 they are packed as their integers, exact, and scaled in the epilogue, so the bf16 convolution is the
// fp32 convolution of the bf16-rounded input, to fp32 summation order (<= 1e-5; bf16-rounded weights are
// off by up to 2^-9 each: ~1e-3 here). One channel off the grid keeps its bf16-rounded weights (the
// reference rounds them too). Without AVX512_BF16 everything runs fp32.
TEST(ConvBf16, Int8GridWeightsAreExact) {
  const bool bf16 = conv_bf16_supported();
  const ConvIsa isa = conv_isa_supported(ConvIsa::Avx512) ? ConvIsa::Avx512 : conv_best_isa();
  const auto round_bf16 = [](float x) {  // to nearest even, as vcvtneps2bf16
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    b = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
    float y;
    std::memcpy(&y, &b, sizeof y);
    return y;
  };
  std::mt19937 rng(41);
  // The 3x3 ones with 8 input channels or more run on the tiles over output channels (an odd count: the last
  // pair's high half is zero; 48 = a full block and a half one).
  const std::vector<Case> shapes = {{"1x1", shape(48, 72, 1, 1, 0), 1, 9, 23},
                                    {"3x3s1_odd_channels", shape(7, 12, 3, 1, 1), 1, 11, 13},
                                    {"3x3s1_over_channels_odd_pairs", shape(9, 48, 3, 1, 1), 2, 7, 23},
                                    {"3x3s2", shape(16, 9, 3, 2, 1), 2, 12, 17}};
  for (const auto& c : shapes) {
    SCOPED_TRACE(c.name);
    const auto& s = c.s;
    const int per = s.in_channels * s.kernel_h * s.kernel_w;
    cv::Mat w({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, CV_32F);
    std::uniform_int_distribution<int> qd(-127, 127);
    std::uniform_real_distribution<float> sd(1e-3f, 2e-2f), fd(-0.3f, 0.3f);
    for (int o = 0; o < s.out_channels; ++o) {
      float* wo = w.ptr<float>() + o * per;
      const float scale = sd(rng);
      for (int i = 0; i < per; ++i) wo[i] = o == 1 ? fd(rng) : static_cast<float>(qd(rng)) * scale;
      if (o != 1) wo[per / 2] = (o % 2 ? -127.f : 127.f) * scale;  // the channel's max |w|
    }
    const cv::Mat b = random_mat({s.out_channels}, 0.5f, rng);
    const cv::Mat in = random_mat({c.n, s.in_channels, c.h, c.w}, 2.f, rng);
    PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), isa, ConvPrecision::Bf16);
    std::vector<float> ws(conv.workspace_floats(c.h, c.w));
    cv::Mat ref_w = w.clone(), ref_in = in.clone();
    if (bf16) {
      for (int i = 0; i < per; ++i) ref_w.ptr<float>()[per + i] = round_bf16(w.ptr<float>()[per + i]);
      for (auto* p = ref_in.ptr<float>(); p != ref_in.ptr<float>() + ref_in.total(); ++p) *p = round_bf16(*p);
    }
    const cv::Mat ref = opencv_conv(s, ref_w, b, ref_in);
    cv::Mat got(ref.dims, ref.size.p, CV_32F, cv::Scalar(-7));
    const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(ref.total() / c.n);
    conv.forward(in.ptr<float>(), c.n, c.h, c.w, static_cast<std::ptrdiff_t>(in.total() / c.n),
                 got.ptr<float>(), out_b, ConvActivation::None, ws.data(), ws.size());
    EXPECT_EQ(conv.precision(), bf16 ? ConvPrecision::Bf16 : ConvPrecision::Fp32);
    EXPECT_EQ(conv.int8_grid_channels(), bf16 ? s.out_channels - 1 : 0);
    EXPECT_LE(max_rel_diff(got, ref), bf16 ? 1e-5 : kTolerance);
    // A part of each row (the first input channels, without the rows' largest weights: a layer split by
    // input) is on its channel's grid only when told the whole row's scale.
    if (s.in_channels < 4) continue;
    ConvShape part = s;
    part.in_channels = s.in_channels / 2;
    const int part_per = part.in_channels * s.kernel_h * s.kernel_w;
    std::vector<float> wp;
    std::vector<double> scales;
    for (int o = 0; o < s.out_channels; ++o) {
      const float* wo = w.ptr<float>() + o * per;
      wp.insert(wp.end(), wo, wo + part_per);
      scales.push_back(conv_int8_grid_scale(wo, static_cast<std::size_t>(per)));
    }
    EXPECT_EQ(PackedConv(part, wp.data(), b.ptr<float>(), isa, ConvPrecision::Bf16, scales.data())
                  .int8_grid_channels(),
              bf16 ? s.out_channels - 1 : 0);
    EXPECT_LT(PackedConv(part, wp.data(), b.ptr<float>(), isa, ConvPrecision::Bf16).int8_grid_channels(),
              bf16 ? s.out_channels - 1 : 1);
  }
}

// The layer as the adapter leaves it when it reads a Concat and a Split in place: inputs a (whole) and b
// (channels 4..9), the skip tensor's channels 3..14 of a larger tensor; SiLU as an attribute.
TEST_P(ConvVsOpenCV, InputsReadInPlaceLayerInANet) {
  if (!aitw_convolution_active()) GTEST_SKIP() << "OpenCV's convolution runs on this CPU";
  std::mt19937 rng(31);
  const ConvShape s = shape(11, 12, 3, 1, 1);
  const cv::Mat w = random_mat({12, 11, 3, 3}, 0.2f, rng), b = random_mat({12}, 0.5f, rng);
  const cv::Mat a = random_mat({2, 5, 10, 14}, 1.f, rng), bb = random_mat({2, 12, 10, 14}, 1.f, rng);
  const cv::Mat skip = random_mat({2, 16, 10, 14}, 1.f, rng);
  auto lp = conv_params(s, w, b);
  lp.set(kConvolutionMark, 1);
  lp.set(kConvResidualMark, 1);
  lp.set(kConvActivationAttr, "silu");
  const int ranges[] = {0, -1, 4, 6, 3, 12};
  lp.set(kConvInputsAttr, cv::dnn::DictValue::arrayInt(ranges, 6));
  const auto make = [&](const cv::Mat& skip_in) {
    cv::dnn::Net net;
    net.setInputsNames({"a", "b", "skip"});
    const int id = net.addLayer(lp.name, lp.type, lp);
    for (int i = 0; i < 3; ++i) net.connect(0, i, id, i);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setInput(a, "a");
    net.setInput(bb, "b");
    net.setInput(skip_in, "skip");
    EXPECT_TRUE(is_aitw_convolution(net.getLayer(id)));
    return net;
  };
  auto net = make(skip);
  const cv::Mat got = net.forward().clone();
  cv::Mat x(std::vector<int>{2, 11, 10, 14}, CV_32F);
  for (int i = 0; i < 2; ++i) {
    std::copy(a.ptr<float>(i), a.ptr<float>(i) + 5 * 140, x.ptr<float>(i));
    std::copy(bb.ptr<float>(i) + 4 * 140, bb.ptr<float>(i) + 10 * 140, x.ptr<float>(i) + 5 * 140);
  }
  cv::Mat expect = opencv_conv(s, w, b, x);
  silu(expect.ptr<float>(), expect.ptr<float>(), expect.total());
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 12 * 140; ++k) expect.ptr<float>(i)[k] += skip.ptr<float>(i)[3 * 140 + k];
  EXPECT_LE(max_rel_diff(got, expect), kTolerance);
  // A skip tensor without channels 3..14 is refused at load with the layer's name.
  auto bad = make(random_mat({2, 14, 10, 14}, 1.f, rng));
  try {
    bad.forward();
    ADD_FAILURE() << "a skip tensor too small was accepted";
  } catch (const cv::Exception& e) {
    EXPECT_NE(std::string(e.what()).find("convolution 'conv'"), std::string::npos) << e.what();
  }
  // Without aitw's layer nothing could read the extra inputs: OpenCV's fallback is refused, not used.
  cv::dnn::LayerParams odd = lp;
  odd.set("dilation", 2);
  EXPECT_THROW(create_convolution_layer(odd), cv::Exception);
}

// A neck's Upsample -> Concat -> 1x1 read as kConvUpscaleAttr: input a at half the size (upscaled 2x by
// nearest neighbour), b at the output's, then SiLU; against OpenCV's convolution of the explicit
// concatenation. Odd low sizes, 2 images, in fp32 and (where the CPU runs it) bf16.
TEST_P(ConvVsOpenCV, UpscaledInputsGiveTheConvolutionOfTheUpscaledConcatenation) {
  if (!aitw_convolution_active()) GTEST_SKIP() << "OpenCV's convolution runs on this CPU";
  std::mt19937 rng(41);
  const int ca = 70, cb = 9, co = 72, lh = 5, lw = 7, h = 2 * lh, w = 2 * lw;
  const ConvShape s = shape(ca + cb, co, 1, 1, 0);
  const cv::Mat wt = random_mat({co, ca + cb, 1, 1}, 1.f / std::sqrt(79.f), rng),
                b = random_mat({co}, 0.5f, rng);
  const cv::Mat a = random_mat({2, ca, lh, lw}, 1.f, rng), bb = random_mat({2, cb, h, w}, 1.f, rng);
  cv::Mat x(std::vector<int>{2, ca + cb, h, w}, CV_32F);
  for (int i = 0; i < 2; ++i) {
    for (int c = 0; c < ca; ++c)
      for (int y = 0; y < h; ++y)
        for (int xx = 0; xx < w; ++xx)
          x.ptr<float>(i)[(c * h + y) * w + xx] = a.ptr<float>(i)[(c * lh + y / 2) * lw + xx / 2];
    std::copy(bb.ptr<float>(i), bb.ptr<float>(i) + cb * h * w, x.ptr<float>(i) + ca * h * w);
  }
  cv::Mat expect = opencv_conv(s, wt, b, x);
  silu(expect.ptr<float>(), expect.ptr<float>(), expect.total());
  for (const bool bf16 : {false, true}) {
    if (bf16 && !(conv_bf16_supported() && GetParam() == ConvIsa::Avx512)) continue;
    SCOPED_TRACE(bf16 ? "bf16" : "fp32");
    auto lp = conv_params(s, wt, b);
    lp.set(kConvolutionMark, 1);
    if (bf16) lp.set(kConvPrecisionAttr, "bf16");
    const int ranges[] = {0, -1, 0, -1}, factors[] = {2, 1};
    lp.set(kConvInputsAttr, cv::dnn::DictValue::arrayInt(ranges, 4));
    lp.set(kConvUpscaleAttr, cv::dnn::DictValue::arrayInt(factors, 2));
    // The layer with its inputs in this order, then the SiLU.
    const auto make_net = [&](const cv::dnn::LayerParams& params,
                              const std::vector<std::pair<std::string, cv::Mat>>& inputs) {
      cv::dnn::Net net;
      std::vector<std::string> names;
      for (const auto& in : inputs) names.push_back(in.first);
      net.setInputsNames(names);
      const int id = net.addLayer(params.name, params.type, const_cast<cv::dnn::LayerParams&>(params));
      for (int i = 0; i < 2; ++i) net.connect(0, i, id, i);
      cv::dnn::LayerParams act;
      act.name = "act";
      act.type = "Swish";
      net.connect(id, 0, net.addLayer(act.name, act.type, act), 0);
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      for (const auto& in : inputs) net.setInput(in.second, in.first);
      EXPECT_TRUE(is_aitw_convolution(net.getLayer(id)));
      return net;
    };
    cv::dnn::Net net = make_net(lp, {{"a", a}, {"b", bb}});
    const cv::Mat got = net.forward().clone();
    // bf16: the activations rounded to 8 bits of mantissa (ConvBf16's tolerance).
    EXPECT_LE(max_rel_diff(got, expect), bf16 ? 1e-2 : kTolerance);
    // The upscaled input as bf16 channel pairs (kConvPairsInAttr): in bf16 bit for bit the output of its fp32
    // values, which the kernels round to the same pairs; a layer that runs fp32 refuses them when the net is
    // set up, naming itself. Pairs out with an upscaled input are refused at load.
    auto paired = lp;
    const int flags[] = {1, 0};
    paired.set(kConvPairsInAttr, cv::dnn::DictValue::arrayInt(flags, 2));
    const std::vector<float> a_pairs = to_pairs(a.ptr<float>(), 2, ca, lh * lw, ca * lh * lw);
    cv::Mat a_pairs_mat(a.dims, a.size.p, CV_32F, const_cast<float*>(a_pairs.data()));
    cv::dnn::Net pnet = make_net(paired, {{"a", a_pairs_mat}, {"b", bb}});
    if (bf16) {
      EXPECT_EQ(aitw::testing::max_abs_diff(pnet.forward(), got), 0.0);
      // b first: the pairs at channel 9 of the layer's input, channel 0 of the upscaled product (each product
      // counts its own); the weights' columns in that order.
      cv::Mat wba(wt.dims, wt.size.p, CV_32F);
      for (int o = 0; o < co; ++o) {
        std::copy_n(wt.ptr<float>(o) + ca, cb, wba.ptr<float>(o));
        std::copy_n(wt.ptr<float>(o), ca, wba.ptr<float>(o) + cb);
      }
      auto reversed = conv_params(s, wba, b);
      reversed.set(kConvolutionMark, 1);
      reversed.set(kConvPrecisionAttr, "bf16");
      const int rfactors[] = {1, 2}, rflags[] = {0, 1};
      reversed.set(kConvInputsAttr, cv::dnn::DictValue::arrayInt(ranges, 4));
      reversed.set(kConvUpscaleAttr, cv::dnn::DictValue::arrayInt(rfactors, 2));
      reversed.set(kConvPairsInAttr, cv::dnn::DictValue::arrayInt(rflags, 2));
      cv::dnn::Net rnet = make_net(reversed, {{"b", bb}, {"a", a_pairs_mat}});
      EXPECT_EQ(aitw::testing::max_abs_diff(rnet.forward(), got), 0.0) << "b first";
    } else {
      try {
        pnet.forward();
        ADD_FAILURE() << "pairs read by an fp32 layer were accepted";
      } catch (const cv::Exception& e) {
        EXPECT_NE(std::string(e.what()).find("convolution 'conv': marked for bf16 channel pairs, but it runs "
                                             "fp32 here and reads pairs"),
                  std::string::npos)
            << e.what();
      }
    }
    auto pairs_out = lp;
    pairs_out.set(kConvPairsOutAttr, 1);
    EXPECT_THROW(create_convolution_layer(pairs_out), cv::Exception);
    // The same net at the wrong low size is refused with the layer's name.
    net.setInput(random_mat({2, ca, lh + 1, lw}, 1.f, rng), "a");
    try {
      net.forward();
      ADD_FAILURE() << "an upscaled input of the wrong size was accepted";
    } catch (const cv::Exception& e) {
      EXPECT_NE(std::string(e.what()).find("convolution 'conv'"), std::string::npos) << e.what();
    }
  }
  // Only a 1x1 stride-1 unpadded convolution takes upscaled inputs.
  auto lp = conv_params(shape(ca + cb, co, 3, 1, 1), random_mat({co, ca + cb, 3, 3}, 0.2f, rng), b);
  lp.set(kConvolutionMark, 1);
  const int factors[] = {2, 1}, ranges[] = {0, -1, 0, -1};
  lp.set(kConvInputsAttr, cv::dnn::DictValue::arrayInt(ranges, 4));
  lp.set(kConvUpscaleAttr, cv::dnn::DictValue::arrayInt(factors, 2));
  EXPECT_THROW(create_convolution_layer(lp), cv::Exception);
}

// The upscaled addend in each unit's output loop equals the forward without activation, then out +=
// up(addend), then the activation (to the SiLU's precision): on the direct path (fp32), the whole-image and
// band paths (bf16, where the CPU has AVX512_BF16), images of one tile to many bands, a partial
// output-channel block (70 channels: no level's block divides it), batch 2 with gaps, factors 2 and 3, ReLU
// and SiLU, at two thread counts (the units' split follows it). Misuse is refused.
TEST_P(ConvVsOpenCV, UpscaledAddendInTheOutputLoopEqualsAPassAfter) {
  std::mt19937 rng(43);
  const int ci = 79, co = 70, threads = cv::getNumThreads();
  const ConvShape s = shape(ci, co, 1, 1, 0);
  const cv::Mat wt = random_mat({co, ci, 1, 1}, 1.f / std::sqrt(79.f), rng), b = random_mat({co}, 0.5f, rng);
  struct AddendCase {
    int h, w, f;
    ConvActivation act;
  };
  const AddendCase addend_cases[] = {{4, 6, 2, ConvActivation::SiLU},     {10, 14, 2, ConvActivation::SiLU},
                                     {30, 40, 2, ConvActivation::SiLU},   {62, 82, 2, ConvActivation::SiLU},
                                     {120, 160, 2, ConvActivation::SiLU}, {12, 21, 3, ConvActivation::ReLU}};
  for (const int nthreads : {threads, 3})
    for (const bool bf16 : {false, true}) {
      if (bf16 && !(conv_bf16_supported() && GetParam() == ConvIsa::Avx512)) continue;
      cv::setNumThreads(nthreads);
      const PackedConv conv(s, wt.ptr<float>(), b.ptr<float>(), GetParam(),
                            bf16 ? ConvPrecision::Bf16 : ConvPrecision::Fp32);
      for (const auto& c : addend_cases) {
        SCOPED_TRACE(std::string(bf16 ? "bf16 " : "fp32 ") + std::to_string(c.h) + "x" + std::to_string(c.w) +
                     " f" + std::to_string(c.f) + ", " + std::to_string(nthreads) + " threads");
        const int n = 2, lh = c.h / c.f, lw = c.w / c.f;
        const cv::Mat in = random_mat({n, ci, c.h, c.w}, 1.f, rng);
        const std::ptrdiff_t out_b = static_cast<std::ptrdiff_t>(co) * c.h * c.w, gap = 5,
                             low_b = static_cast<std::ptrdiff_t>(co) * lh * lw + 3;
        std::vector<float> z(static_cast<std::size_t>(n * low_b));
        for (auto& v : z) v = std::uniform_real_distribution<float>(-2.f, 2.f)(rng);
        std::vector<float> ws(conv.workspace_floats(c.h, c.w));
        std::vector<float> ref(static_cast<std::size_t>(n * (out_b + gap)), -7.f), got = ref;
        conv.forward(in.ptr<float>(), n, c.h, c.w, in.step[0] / sizeof(float), ref.data(), out_b + gap,
                     ConvActivation::None, ws.data(), ws.size());
        for (int i = 0; i < n; ++i)
          for (int o = 0; o < co; ++o) {
            float* p = ref.data() + i * (out_b + gap) + static_cast<std::ptrdiff_t>(o) * c.h * c.w;
            const float* zp = z.data() + i * low_b + static_cast<std::ptrdiff_t>(o) * lh * lw;
            for (int y = 0; y < c.h; ++y)
              for (int x = 0; x < c.w; ++x) p[y * c.w + x] += zp[(y / c.f) * lw + x / c.f];
            if (c.act == ConvActivation::SiLU) silu(p, p, static_cast<std::size_t>(c.h) * c.w);
            if (c.act == ConvActivation::ReLU)
              for (int k = 0; k < c.h * c.w; ++k) p[k] = std::max(p[k], 0.f);
          }
        const ConvUpscaledAddend addend{z.data(), low_b, c.f};
        const ConvInput one{in.ptr<float>(), static_cast<std::ptrdiff_t>(in.step[0] / sizeof(float)), ci};
        conv.forward(&one, 1, n, c.h, c.w, got.data(), out_b + gap, c.act, ws.data(), ws.size(), nullptr, 0,
                     &addend);
        // The sums and the addend bit for bit; the SiLU the tiles' own: within 1e-6 of fast_math's in fp32,
        // 7.5e-5 (relative) in bf16 (conv_microkernel.hpp's degree-3 form for the bf16 kernels).
        const float tol = bf16 ? 1e-4f : 2e-6f;
        std::size_t differ = 0;
        for (std::size_t k = 0; k < got.size(); ++k)
          differ += !(std::fabs(got[k] - ref[k]) <= tol * std::max(1.f, std::fabs(ref[k])));
        EXPECT_EQ(differ, 0u) << "of " << got.size();
        if (!bf16) continue;
        // bf16 channel pairs in (a neck's 1x1 reading a pair tensor beside the upscaled one): bit for bit
        // the output of the fp32 input, which the kernels round to the same pairs. Whole, and in two parts
        // (10 fp32 channels, then the rest as pairs).
        const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w,
                             in_b = in.step[0] / sizeof(float);
        const std::vector<float> pairs = to_pairs(in.ptr<float>(), n, ci, plane, in_b);
        std::vector<float> tail(static_cast<std::size_t>(n * in_b));
        for (int i = 0; i < n; ++i)
          std::copy_n(in.ptr<float>() + i * in_b + 10 * plane, (ci - 10) * plane, tail.data() + i * in_b);
        const std::vector<float> tail_pairs = to_pairs(tail.data(), n, ci - 10, plane, in_b);
        const ConvInput whole{pairs.data(), in_b, ci, true};
        const ConvInput parts[2] = {{in.ptr<float>(), in_b, 10}, {tail_pairs.data(), in_b, ci - 10, true}};
        for (const auto& [inputs, count] : {std::pair{&whole, 1}, std::pair{parts + 0, 2}}) {
          std::vector<float> from_pairs(got.size(), -7.f);
          conv.forward(inputs, count, n, c.h, c.w, from_pairs.data(), out_b + gap, c.act, ws.data(),
                       ws.size(), nullptr, 0, &addend);
          EXPECT_EQ(from_pairs, got) << count << " input(s) with pairs";
        }
        // Pairs out with an addend: refused (its pass runs on the fp32 output).
        EXPECT_THROW(conv.forward(&whole, 1, n, c.h, c.w, got.data(), out_b + gap, c.act, ws.data(),
                                  ws.size(), nullptr, 0, &addend, true),
                     std::invalid_argument);
      }
    }
  cv::setNumThreads(threads);
  // Misuse: a 3x3, a residual, a size the factor does not divide, no data, factor 0.
  std::vector<float> z(64 * 64), out(72 * 64 * 64), ws(1 << 20);
  const cv::Mat in = random_mat({1, ci, 8, 8}, 1.f, rng);
  const ConvUpscaledAddend addend{z.data(), 0, 2};
  const ConvInput one{in.ptr<float>(), 0, ci};
  const cv::Mat w3 = random_mat({co, ci, 3, 3}, 0.1f, rng);
  const PackedConv c3(shape(ci, co, 3, 1, 1), w3.ptr<float>(), b.ptr<float>(), GetParam());
  EXPECT_THROW(c3.forward(&one, 1, 1, 8, 8, out.data(), 0, ConvActivation::None, ws.data(), ws.size(),
                          nullptr, 0, &addend),
               std::invalid_argument);
  const PackedConv c1(s, wt.ptr<float>(), b.ptr<float>(), GetParam());
  EXPECT_THROW(c1.forward(&one, 1, 1, 8, 8, out.data(), 0, ConvActivation::None, ws.data(), ws.size(),
                          z.data(), 0, &addend),
               std::invalid_argument);
  for (const ConvUpscaledAddend bad : {ConvUpscaledAddend{z.data(), 0, 3}, ConvUpscaledAddend{nullptr, 0, 2},
                                       ConvUpscaledAddend{z.data(), 0, 0}})
    EXPECT_THROW(c1.forward(&one, 1, 1, 8, 8, out.data(), 0, ConvActivation::None, ws.data(), ws.size(),
                            nullptr, 0, &bad),
                 std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Isa, ConvVsOpenCV, ::testing::ValuesIn(levels()),
                         [](const auto& param_info) { return std::string(conv_isa_name(param_info.param)); });

// The workspace is sized for the thread count of its time; more threads later must not write past it.
TEST(ConvLayer, WorkspaceSizedBeforeTheThreadCountGrew) {
  std::mt19937 rng(11);
  // 60 x 80: split band by band, a buffer per stripe (7 outputs: fewer than a tile over output channels on
  // every level, so no level reads this one in place). Winograd off: the direct band path's workspace.
  const ConvShape s = shape(64, 7, 3, 1, 1);
  const cv::Mat w = random_mat({7, 64, 3, 3}, 0.05f, rng), b = random_mat({7}, 0.5f, rng);
  const cv::Mat in = random_mat({1, 64, 60, 80}, 1.f, rng);
  const int threads = cv::getNumThreads();
  PackedConv conv(s, w.ptr<float>(), b.ptr<float>());
  conv_force_winograd(false);
  cv::setNumThreads(1);
  std::vector<float> ws(conv.workspace_floats(60, 80));
  cv::setNumThreads(16);
  cv::Mat out(std::vector<int>{1, 7, 60, 80}, CV_32F);
  conv.forward(in.ptr<float>(), 1, 60, 80, 0, out.ptr<float>(), 0, ConvActivation::None, ws.data(),
               ws.size());
  EXPECT_LE(max_rel_diff(out, opencv_conv(s, w, b, in)), kTolerance);
  EXPECT_THROW(
      conv.forward(in.ptr<float>(), 1, 60, 80, 0, out.ptr<float>(), 0, ConvActivation::None, ws.data(), 10),
      std::invalid_argument);
  // Winograd: per-thread buffers, no workspace, at any thread count (at one thread bands of tile rows; at 16
  // the 15 tile rows are one band whose output-channel blocks the threads share).
  conv_force_winograd(true);
  cv::setNumThreads(1);
  ws.assign(conv.workspace_floats(60, 80), 0.f);
  EXPECT_TRUE(ws.empty());
  cv::setNumThreads(16);
  out.setTo(-7);
  conv.forward(in.ptr<float>(), 1, 60, 80, 0, out.ptr<float>(), 0, ConvActivation::None, ws.data(),
               ws.size());
  EXPECT_LE(max_rel_diff(out, opencv_conv(s, w, b, in)), kTolerance);
  conv_force_winograd(std::nullopt);
  cv::setNumThreads(threads);
}

// Which layers take Winograd by default: the 3x3 stride-1 ones with 8+ channels on images of 20+ tiles
// (AVX-512: 32+ channels and 300+ tiles, its direct tiles win below in the forward), unless AITW_CONV=direct
// (kernel/CMakeLists.txt runs this test a second time with it set).
TEST(ConvLayer, WinogradChoiceFollowsShapeAndEnvironment) {
  const char* env = std::getenv("AITW_CONV");
  const bool direct = env && std::string(env) == "direct";
  const std::vector<float> w(64 * 64 * 9, 0.01f);
  const PackedConv big(shape(64, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Portable);
  EXPECT_EQ(big.winograd(60, 80), !direct);
  EXPECT_EQ(big.winograd(15, 20), !direct);
  EXPECT_FALSE(big.winograd(12, 12));  // 9 tiles
  if (conv_isa_supported(ConvIsa::Avx512)) {
    const PackedConv avx512(shape(64, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512);
    EXPECT_EQ(avx512.winograd(60, 80), !direct);  // 300 tiles
    if (conv_avx512_full_width()) {
      EXPECT_FALSE(avx512.winograd(56, 80));  // 280
      EXPECT_FALSE(avx512.winograd(30, 40));
      // 32+ channels on both sides (below, the transforms outweigh the multiplies saved).
      EXPECT_EQ(PackedConv(shape(32, 32, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512).winograd(60, 80),
                !direct);
      EXPECT_FALSE(PackedConv(shape(16, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512).winograd(120, 160));
      EXPECT_FALSE(PackedConv(shape(64, 16, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512).winograd(120, 160));
    } else {
      // Half-width 512-bit FMAs: the other levels' rule, from 20 tiles and 8 channels.
      EXPECT_EQ(avx512.winograd(30, 40), !direct);
      EXPECT_EQ(avx512.winograd(15, 20), !direct);
      EXPECT_FALSE(avx512.winograd(12, 12));
      EXPECT_EQ(PackedConv(shape(16, 8, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512).winograd(120, 160),
                !direct);
      EXPECT_FALSE(PackedConv(shape(4, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Avx512).winograd(60, 80));
    }
  }
  // The other levels keep Winograd from 8 channels.
  EXPECT_EQ(PackedConv(shape(16, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Portable).winograd(120, 160),
            !direct);
  EXPECT_FALSE(PackedConv(shape(4, 64, 3, 1, 1), w.data(), nullptr, ConvIsa::Portable).winograd(60, 80));
  EXPECT_FALSE(PackedConv(shape(64, 4, 3, 1, 1), w.data(), nullptr, ConvIsa::Portable).winograd(60, 80));
  // Forcing wins over the environment (tests and benchmarks compare both paths in one process).
  conv_force_winograd(true);
  EXPECT_TRUE(big.winograd(60, 80));
  conv_force_winograd(std::nullopt);
  // F(6x4) where 6-row tiles cover the height with fewer positions (48 per 6 rows against 36 per 4).
  for (const int h : {30, 60, 120, 24, 40}) EXPECT_EQ(PackedConv::winograd_rows(h), 6) << h;
  for (const int h : {15, 20, 8, 4, 1}) EXPECT_EQ(PackedConv::winograd_rows(h), 4) << h;
  conv_force_winograd_rows(4);
  EXPECT_EQ(PackedConv::winograd_rows(60), 4);
  conv_force_winograd_rows(std::nullopt);
  EXPECT_THROW(conv_force_winograd_rows(5), std::invalid_argument);
}

// Whether 512-bit FMAs are full width: $AITW_AVX512_FMA (full, half; anything else refused, naming the
// variable), else measured: a ratio of ~1 (full) or ~2 (half) where the CPU has AVX-512, 0 and "full"
// without. CTest runs this with the variable unset, full, half and wrong.
TEST(ConvLayer, Avx512FmaWidthFromTheEnvironmentOrMeasured) {
  const char* env = std::getenv("AITW_AVX512_FMA");
  const std::string v = env ? env : "";
  if (v == "full" || v == "half") {
    EXPECT_EQ(conv_avx512_full_width(), v == "full");
    return;
  }
  if (!v.empty()) {
    try {
      conv_avx512_full_width();
      ADD_FAILURE() << "AITW_AVX512_FMA=" << v << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("AITW_AVX512_FMA='" + v + "': expects full or half"),
                std::string::npos)
          << e.what();
    }
    return;
  }
  const double ratio = conv_avx512_fma_width_ratio();
  if (!conv_isa_supported(ConvIsa::Avx512)) {
    EXPECT_EQ(ratio, 0.);
    EXPECT_TRUE(conv_avx512_full_width());
    return;
  }
  EXPECT_GT(ratio, 0.6);
  EXPECT_LT(ratio, 3.);
  EXPECT_EQ(conv_avx512_full_width(), ratio < 1.5) << "ratio " << ratio;
  RecordProperty("avx512_fma_width_ratio", std::to_string(ratio));
}

// The flat depthwise path keeps its row-end masks per thread, for the last geometry: they depend on the
// vector width too, and one thread may run layers of several levels in turn (22 columns: 132 pixels round to
// 132, 136 and 144 on 4-, 8- and 16-lane levels; masks reused across levels cleared the wrong columns and
// read past their end, which the sanitizer run caught).
TEST(ConvLayer, DepthwiseFlatLevelsInTurnOnOneThread) {
  std::mt19937 rng(23);
  const ConvShape s = shape(3, 3, 3, 1, 1, 3);
  const cv::Mat w = random_mat({3, 1, 3, 3}, 0.3f, rng), b = random_mat({3}, 0.5f, rng);
  const cv::Mat in = random_mat({1, 3, 6, 22}, 1.f, rng);
  const cv::Mat ref = opencv_conv(s, w, b, in);
  const int threads = cv::getNumThreads();
  cv::setNumThreads(1);
  for (int round = 0; round < 2; ++round)
    for (const ConvIsa isa : levels()) {
      SCOPED_TRACE(conv_isa_name(isa));
      PackedConv conv(s, w.ptr<float>(), b.ptr<float>(), isa);
      std::vector<float> ws(conv.workspace_floats(6, 22));
      cv::Mat got(ref.dims, ref.size.p, CV_32F);
      conv.forward(in.ptr<float>(), 1, 6, 22, 0, got.ptr<float>(), 0, ConvActivation::None, ws.data(),
                   ws.size());
      EXPECT_LE(max_rel_diff(got, ref), kTolerance);
    }
  cv::setNumThreads(threads);
}

// A kernel larger than the padded input (a malformed model): no output pixels, nothing read or written.
TEST(ConvLayer, KernelLargerThanTheInputComputesNothing) {
  const ConvShape s = shape(4, 8, 3, 1, 0);
  std::vector<float> w(8 * 4 * 9, 0.1f), b(8, 0.f), in(4 * 2 * 2, 1.f);
  PackedConv conv(s, w.data(), b.data());
  EXPECT_EQ(conv.workspace_floats(2, 2), 0u);
  conv.forward(in.data(), 1, 2, 2, 0, nullptr, 0, ConvActivation::SiLU, nullptr, 0);
}

TEST(ConvLayer, UnsupportedShapesFallBackToOpenCV) {
  register_dnn_layers();
  std::mt19937 rng(5);
  const cv::Mat w = random_mat({6, 2, 3, 3}, 0.3f, rng), b = random_mat({6}, 0.3f, rng);
  auto lp = conv_params(shape(4, 6, 3, 1, 2, 2), w, b);  // groups 2 of 4 channels: not depthwise
  lp.set(kConvolutionMark, 1);
  EXPECT_FALSE(is_aitw_convolution(create_convolution_layer(lp)));
  const cv::Mat w1 = random_mat({6, 4, 3, 3}, 0.3f, rng);
  auto dil = conv_params(shape(4, 6, 3, 1, 2), w1, b);
  dil.set("dilation", 2);
  dil.set(kConvolutionMark, 1);
  EXPECT_FALSE(is_aitw_convolution(create_convolution_layer(dil)));
  auto plain = conv_params(shape(4, 6, 3, 1, 1), w1, b);
  EXPECT_FALSE(is_aitw_convolution(create_convolution_layer(plain)));  // not marked
  plain.set(kConvolutionMark, 1);
  EXPECT_EQ(is_aitw_convolution(create_convolution_layer(plain)), aitw_convolution_enabled());
  EXPECT_FALSE(conv_unsupported_reason(shape(4, 6, 3, 3, 1)).empty());  // stride 3
  // A fused residual Add has no OpenCV fallback (its layer would read the skip tensor as weights): a
  // clear error instead.
  dil.set(kConvResidualMark, 1);
  EXPECT_THROW(create_convolution_layer(dil), cv::Exception);
}

}  // namespace
}  // namespace aitw::kernel
