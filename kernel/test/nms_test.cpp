#include "aitw/kernel/nms.hpp"

#include <gtest/gtest.h>

#include <random>

#include <opencv2/dnn.hpp>

namespace aitw::kernel {
namespace {

// The usual OpenCV path: class-aware NMS by offsetting each class into its own region, then NMSBoxes.
std::vector<int> opencv_nms(const std::vector<Detection>& sorted, float iou) {
  std::vector<cv::Rect2d> boxes;
  std::vector<float> scores;
  for (const auto& d : sorted) {
    const double off = d.class_id * 10000.0;
    boxes.emplace_back(d.x1 + off, d.y1 + off, d.x2 - d.x1, d.y2 - d.y1);
    scores.push_back(d.score);
  }
  std::vector<int> keep;
  cv::dnn::NMSBoxes(boxes, scores, 0.f, iou, keep);  // keeps scores > 0: inputs never have 0
  return keep;
}

std::vector<Detection> random_dets(int n, unsigned seed, int classes, bool quantised) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0.f, 600.f), size(1.f, 150.f), score(0.f, 1.f);
  std::vector<Detection> d(n);
  for (auto& x : d) {
    x.x1 = pos(rng);
    x.y1 = pos(rng);
    x.x2 = x.x1 + size(rng);
    x.y2 = x.y1 + size(rng);
    x.score = quantised ? 0.05f + std::round(score(rng) * 10.f) / 10.f : 0.001f + score(rng);  // ties
    x.class_id = static_cast<int>(rng() % classes);
  }
  return d;
}

void expect_same_as_opencv(std::vector<Detection> dets, float iou) {
  std::vector<int> keep;
  nms(dets, {iou, 1 << 30, false}, keep);  // sorts dets (stable) as NMSBoxes does internally
  EXPECT_EQ(keep, opencv_nms(dets, iou));
}

}  // namespace

TEST(Nms, EmptyInput) {
  std::vector<Detection> d;
  std::vector<int> keep{1, 2};
  nms(d, {}, keep);
  EXPECT_TRUE(keep.empty());
}

TEST(Nms, SuppressesOverlapOnlyWithinClass) {
  std::vector<Detection> d{{0, 0, 10, 10, 0.9f, 0}, {1, 1, 11, 11, 0.8f, 0}, {1, 1, 11, 11, 0.7f, 1}};
  std::vector<int> keep;
  nms(d, {0.5f, 300, false}, keep);
  EXPECT_EQ(keep, (std::vector<int>{0, 2}));
  nms(d, {0.5f, 300, true}, keep);
  EXPECT_EQ(keep, (std::vector<int>{0}));
}

TEST(Nms, IouExactlyAtThresholdIsKept) {
  // IoU = 50 / 150 = 1/3 with threshold 1/3: kept (suppression needs IoU > threshold).
  std::vector<Detection> d{{0, 0, 10, 10, 0.9f, 0}, {5, 0, 15, 10, 0.8f, 0}};
  std::vector<int> keep;
  nms(d, {1.f / 3.f, 300, false}, keep);
  EXPECT_EQ(keep.size(), 2u);
}

TEST(Nms, DegenerateBoxesFollowOpenCv) {
  std::vector<Detection> d{{5, 5, 5, 5, 0.9f, 0}, {5, 5, 5, 5, 0.8f, 0}, {0, 0, 10, 10, 0.7f, 0}};
  std::vector<int> keep;
  nms(d, {0.1f, 300, false}, keep);
  EXPECT_EQ(keep, (std::vector<int>{0, 2}));  // the empty duplicate goes, the real box stays
  expect_same_as_opencv(d, 0.1f);
}

TEST(Nms, MaxDetStopsEarlyWithTheTopBoxes) {
  auto d = random_dets(500, 7, 5, false);
  auto all = d;
  std::vector<int> keep_all, keep10;
  nms(all, {0.5f, 1 << 30, false}, keep_all);
  nms(d, {0.5f, 10, false}, keep10);
  ASSERT_EQ(keep10.size(), 10u);
  EXPECT_EQ(keep10, std::vector<int>(keep_all.begin(), keep_all.begin() + 10));
}

TEST(Nms, MatchesOpenCvOnRandomBoxes) {
  for (unsigned seed = 0; seed < 20; ++seed) expect_same_as_opencv(random_dets(300, seed, 4, false), 0.45f);
}

TEST(Nms, MatchesOpenCvWithTiedScores) {
  for (unsigned seed = 0; seed < 10; ++seed)
    expect_same_as_opencv(random_dets(300, 100 + seed, 3, true), 0.5f);
}

TEST(Nms, MatchesOpenCvOnTenThousandCandidates) {
  expect_same_as_opencv(random_dets(10000, 42, 80, false), 0.7f);
}

}  // namespace aitw::kernel
