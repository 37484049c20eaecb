#include "aitw/kernel/preprocess.hpp"

#include <gtest/gtest.h>

#include <random>

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
