#include "aitw/kernel/preprocess.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

namespace aitw::kernel {
namespace {

cv::Mat random_frame(int w, int h, unsigned seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  // Smooth it a little so that interpolation differences look like real images, not only noise.
  if (w > 4 && h > 4) cv::GaussianBlur(m, m, cv::Size(3, 3), 0);
  return m;
}

// The usual OpenCV path the kernel replaces.
cv::Mat opencv_blob(const cv::Mat& bgr, const LetterboxParams& lb) {
  cv::Mat resized = bgr, padded;
  if (lb.resized_width != bgr.cols || lb.resized_height != bgr.rows)
    cv::resize(bgr, resized, cv::Size(lb.resized_width, lb.resized_height), 0, 0, cv::INTER_LINEAR);
  cv::copyMakeBorder(resized, padded, lb.pad_top, lb.dst_height - lb.resized_height - lb.pad_top, lb.pad_left,
                     lb.dst_width - lb.resized_width - lb.pad_left, cv::BORDER_CONSTANT,
                     cv::Scalar::all(114));
  return cv::dnn::blobFromImage(padded, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false);
}

// The exact-2x output value: the rounded 2x2 mean, x 1/255 (what cv::resize INTER_LINEAR gives at scale 0.5).
float half_value(int a, int b, int c, int d) {
  return static_cast<float>((a + b + c + d + 2) >> 2) * (1.f / 255.f);
}

std::vector<float> ours(const cv::Mat& frame, const LetterboxParams& lb, PixelOrder order) {
  std::vector<float> out(3u * lb.dst_width * lb.dst_height, -1.f);
  PreprocessPlan plan;
  plan.prepare(lb);
  preprocess_letterbox({frame.data, frame.cols, frame.rows, static_cast<std::ptrdiff_t>(frame.step), order},
                       plan, out.data());
  return out;
}

double max_diff(const std::vector<float>& a, const cv::Mat& blob) {
  const float* b = blob.ptr<float>();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

}  // namespace

class PreprocessVsOpenCv : public ::testing::TestWithParam<std::tuple<int, int, int, int>> {};

TEST_P(PreprocessVsOpenCv, BitIdentical) {
  const auto [sw, sh, dw, dh] = GetParam();
  const cv::Mat frame = random_frame(sw, sh, sw * 31 + sh);
  const auto lb = letterbox_params(sw, sh, dw, dh);
  const auto got = ours(frame, lb, PixelOrder::BGR);
  const cv::Mat ref = opencv_blob(frame, lb);
  ASSERT_EQ(ref.total(), got.size());
  EXPECT_EQ(max_diff(got, ref), 0.0);  // same resize, then an exact conversion: bit-identical
}

INSTANTIATE_TEST_SUITE_P(Geometries, PreprocessVsOpenCv,
                         ::testing::Values(std::make_tuple(640, 480, 640, 480),   // camera frame, no resize
                                           std::make_tuple(1280, 720, 640, 384),  // exact 2x down
                                           std::make_tuple(1280, 720, 640, 640),  // square letterbox
                                           std::make_tuple(810, 1080, 480, 640),  // bus.jpg rect
                                           std::make_tuple(333, 251, 640, 640),   // upscale, odd sizes
                                           std::make_tuple(641, 479, 640, 480),   // near 1:1
                                           std::make_tuple(1, 1, 32, 32),         // one pixel
                                           std::make_tuple(7, 1000, 64, 96)));    // extreme aspect

// Exact 2x downscales (the fused path) at widths that are not a multiple of the SIMD block (16 pixels on
// AVX2, 8 on NEON) or narrower than it, with left/right padding, inside a wider buffer (row stride > 3 *
// width): still bit-identical to the OpenCV path, and RGB input gives the same tensor.
class PreprocessHalfVsOpenCv : public ::testing::TestWithParam<std::tuple<int, int, int, int>> {};

TEST_P(PreprocessHalfVsOpenCv, BitIdenticalInWiderBuffer) {
  const auto [sw, sh, dw, dh] = GetParam();
  const auto lb = letterbox_params(sw, sh, dw, dh);
  ASSERT_EQ(lb.resized_width * 2, sw);  // the geometry must take the exact-2x path
  ASSERT_EQ(lb.resized_height * 2, sh);
  const cv::Mat wide = random_frame(sw + 5, sh, sw * 7 + sh);
  const cv::Mat frame = wide(cv::Rect(3, 0, sw, sh));  // step = 3 * (sw + 5), rows start 9 bytes in
  ASSERT_GT(frame.step, 3u * sw);
  const auto got = ours(frame, lb, PixelOrder::BGR);
  const cv::Mat ref = opencv_blob(frame, lb);
  ASSERT_EQ(ref.total(), got.size());
  EXPECT_EQ(max_diff(got, ref), 0.0);

  cv::Mat rgb_wide;
  cv::cvtColor(wide, rgb_wide, cv::COLOR_BGR2RGB);
  EXPECT_EQ(ours(rgb_wide(cv::Rect(3, 0, sw, sh)), lb, PixelOrder::RGB), got);
}

INSTANTIATE_TEST_SUITE_P(Geometries, PreprocessHalfVsOpenCv,
                         ::testing::Values(std::make_tuple(1282, 722, 641, 400),  // odd width, pad top/bottom
                                           std::make_tuple(722, 1282, 400, 641),  // odd width, pad left/right
                                           std::make_tuple(34, 20, 17, 16),       // one block + 1 pixel
                                           std::make_tuple(64, 48, 32, 32),       // whole blocks only
                                           std::make_tuple(30, 10, 15, 8),        // narrower than a block
                                           std::make_tuple(2, 2, 1, 1)));         // one output pixel

// Each exact-2x row kernel (the portable loops and, where this CPU has it, the SIMD one) against the
// definition, at every width from 1 to 70 and a few larger ones, with rows allocated to their exact size (a
// read past the row shows under ASan/valgrind), and with the extremes (all 255: sums of 1020).
TEST(Preprocess, HalfRowKernelsMatchDefinitionAtAnyWidth) {
  std::vector<detail::HalfRowKernel> kernels = {detail::HalfRowKernel::Portable};
  if (detail::has_simd_half_row()) kernels.push_back(detail::HalfRowKernel::Simd);
  std::mt19937 rng(11);
  std::vector<int> widths;
  for (int n = 1; n <= 70; ++n) widths.push_back(n);
  for (int n : {127, 128, 129, 640, 641, 1001}) widths.push_back(n);
  for (const int n : widths) {
    for (const int fill : {-1, 255}) {
      const std::size_t bytes = static_cast<std::size_t>(6) * n;
      auto row0 = std::make_unique<std::uint8_t[]>(bytes), row1 = std::make_unique<std::uint8_t[]>(bytes);
      for (std::size_t i = 0; i < bytes; ++i) {
        row0[i] = static_cast<std::uint8_t>(fill < 0 ? rng() : fill);
        row1[i] = static_cast<std::uint8_t>(fill < 0 ? rng() : fill);
      }
      for (const PixelOrder order : {PixelOrder::BGR, PixelOrder::RGB}) {
        const int red = order == PixelOrder::BGR ? 2 : 0;
        std::vector<float> want(3u * n);
        for (int x = 0; x < n; ++x)
          for (int c = 0; c < 3; ++c) {
            const int k = 6 * x + (c == 0 ? red : c == 1 ? 1 : 2 - red);
            want[static_cast<std::size_t>(c) * n + x] =
                half_value(row0[k], row0[k + 3], row1[k], row1[k + 3]);
          }
        for (const auto kernel : kernels) {
          // One buffer for the three planes, with a guard value after each, which must survive.
          std::vector<float> got(3u * (n + 1), -1.f);
          float* r = got.data();
          float* g = r + n + 1;
          float* b = g + n + 1;
          detail::half_row(kernel, row0.get(), row1.get(), n, order, r, g, b);
          for (int c = 0; c < 3; ++c) {
            const float* plane = got.data() + static_cast<std::size_t>(c) * (n + 1);
            for (int x = 0; x < n; ++x)
              ASSERT_EQ(plane[x], want[static_cast<std::size_t>(c) * n + x])
                  << "kernel " << static_cast<int>(kernel) << " n " << n << " x " << x << " channel " << c;
            ASSERT_EQ(plane[n], -1.f) << "kernel " << static_cast<int>(kernel) << " wrote past n = " << n;
          }
        }
      }
    }
  }
}

TEST(Preprocess, MatchesReferenceImplementation) {
  const cv::Mat frame = random_frame(517, 389, 5);
  const auto lb = letterbox_params(517, 389, 416, 320);
  std::vector<float> ref(3u * 416 * 320);
  preprocess_letterbox_reference(
      {frame.data, frame.cols, frame.rows, static_cast<std::ptrdiff_t>(frame.step)}, lb, ref.data());
  const auto got = ours(frame, lb, PixelOrder::BGR);
  // OpenCV's resize rounds to uint8 with 11-bit weights; the reference interpolates in float.
  for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1.0 / 255 + 1e-6) << i;
}

TEST(Preprocess, RgbInputAndRowPadding) {
  // An RGB frame inside a wider buffer (row stride > 3*width) gives the same tensor as the BGR frame.
  const cv::Mat bgr = random_frame(100, 60, 9);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::Mat wide(60, 130, CV_8UC3, cv::Scalar::all(7));
  rgb.copyTo(wide(cv::Rect(0, 0, 100, 60)));
  const auto lb = letterbox_params(100, 60, 128, 96);
  std::vector<float> a(3u * 128 * 96), b(a.size());
  PreprocessPlan plan;
  plan.prepare(lb);
  preprocess_letterbox({bgr.data, 100, 60, static_cast<std::ptrdiff_t>(bgr.step), PixelOrder::BGR}, plan,
                       a.data());
  preprocess_letterbox({wide.data, 100, 60, static_cast<std::ptrdiff_t>(wide.step), PixelOrder::RGB}, plan,
                       b.data());
  EXPECT_EQ(a, b);
}

TEST(Preprocess, PlanIsReusedUntilGeometryChanges) {
  PreprocessPlan plan;
  EXPECT_TRUE(plan.prepare(letterbox_params(640, 480, 640, 480)));
  EXPECT_FALSE(plan.prepare(letterbox_params(640, 480, 640, 480)));
  EXPECT_TRUE(plan.prepare(letterbox_params(1280, 720, 640, 384)));
}

TEST(Preprocess, RejectsMismatchedFrames) {
  PreprocessPlan plan;
  plan.prepare(letterbox_params(64, 48, 64, 64));
  std::vector<std::uint8_t> px(64 * 48 * 3);
  std::vector<float> out(3 * 64 * 64);
  EXPECT_THROW(preprocess_letterbox({px.data(), 32, 48, 96}, plan, out.data()), std::invalid_argument);
  EXPECT_THROW(preprocess_letterbox({px.data(), 64, 48, 100}, plan, out.data()), std::invalid_argument);
  EXPECT_THROW(preprocess_letterbox({nullptr, 64, 48, 192}, plan, out.data()), std::invalid_argument);
}

}  // namespace aitw::kernel
