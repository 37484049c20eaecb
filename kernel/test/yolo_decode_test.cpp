#include "aitw/kernel/yolo_decode.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

namespace aitw::kernel {
namespace {

struct Level {
  int h, w, stride;
  HeadLayout layout;
  std::vector<float> data;
  Level(int h_, int w_, int stride_, int reg_max, int nc, float fill = -10.f)
      : h(h_),
        w(w_),
        stride(stride_),
        layout{reg_max, nc},
        data(static_cast<std::size_t>(layout.channels()) * h * w, fill) {}
  float& at(int c, int y, int x) { return data[(static_cast<std::size_t>(c) * h + y) * w + x]; }
  HeadLevelView view() const { return {data.data(), h, w, stride}; }
};

LetterboxParams identity(int w, int h) {
  return letterbox_params(w, h, w, h);
}

}  // namespace

TEST(YoloDecode, OneHotBinsGiveExactDistances) {
  // A cell at (x=3, y=2) of a stride-8 level; sides l,t,r,b = 2,1,4,3 bins (one-hot logits).
  Level lv(4, 6, 8, 16, 3);
  for (int side = 0; side < 4; ++side)
    for (int b = 0; b < 16; ++b) lv.at(side * 16 + b, 2, 3) = -30.f;
  const int bins[4] = {2, 1, 4, 3};
  for (int side = 0; side < 4; ++side) lv.at(side * 16 + bins[side], 2, 3) = 30.f;
  lv.at(64 + 1, 2, 3) = 2.f;  // class 1, sigmoid(2) = 0.8808

  std::vector<Detection> out;
  const std::size_t n =
      decode_yolo_level(lv.view(), lv.layout, {0.25f, false, nullptr}, identity(48, 32), out);
  ASSERT_EQ(n, 1u);
  const float cx = 3.5f * 8, cy = 2.5f * 8;
  EXPECT_NEAR(out[0].x1, cx - 2 * 8, 1e-3);
  EXPECT_NEAR(out[0].y1, cy - 1 * 8, 1e-3);
  EXPECT_NEAR(out[0].x2, cx + 4 * 8, 1e-3);
  EXPECT_NEAR(out[0].y2, cy + 3 * 8, 1e-3);
  EXPECT_EQ(out[0].class_id, 1);
  EXPECT_NEAR(out[0].score, 1.f / (1.f + std::exp(-2.f)), 1e-6);
}

TEST(YoloDecode, MapsBackThroughTheLetterbox) {
  Level lv(1, 1, 32, 16, 1);
  for (int side = 0; side < 4; ++side) lv.at(side * 16 + 0, 0, 0) = 30.f;  // zero distances
  lv.at(64, 0, 0) = 5.f;
  // Frame 64x16 into a 32x32 input: scale 0.5, 12 px padding on top. Cell centre (16,16) in the input.
  std::vector<Detection> out;
  decode_yolo_level(lv.view(), lv.layout, {}, letterbox_params(64, 16, 32, 32), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NEAR(out[0].x1, 32.f, 1e-3);
  EXPECT_NEAR(out[0].y1, 8.f, 1e-3);
}

TEST(YoloDecode, NothingAboveThreshold) {
  Level lv(20, 20, 16, 16, 80, -5.f);  // sigmoid(-5) = 0.0067
  std::vector<Detection> out;
  EXPECT_EQ(decode_yolo_level(lv.view(), lv.layout, {0.01f, false, nullptr}, identity(320, 320), out), 0u);
  EXPECT_EQ(decode_yolo_level(lv.view(), lv.layout, {0.01f, true, nullptr}, identity(320, 320), out), 0u);
  EXPECT_TRUE(out.empty());
}

TEST(YoloDecode, ThresholdIsStrict) {
  Level lv(1, 1, 8, 16, 1);
  lv.at(64, 0, 0) = 0.f;  // sigmoid = 0.5 exactly
  std::vector<Detection> out;
  EXPECT_EQ(decode_yolo_level(lv.view(), lv.layout, {0.5f, false, nullptr}, identity(8, 8), out), 0u);
  EXPECT_EQ(decode_yolo_level(lv.view(), lv.layout, {0.49f, false, nullptr}, identity(8, 8), out), 1u);
}

TEST(YoloDecode, ClassMaskExcludesClasses) {
  Level lv(1, 1, 8, 16, 3);
  lv.at(64 + 0, 0, 0) = 4.f;
  lv.at(64 + 2, 0, 0) = 1.f;
  const std::uint8_t mask[3] = {0, 1, 1};
  std::vector<Detection> out;
  decode_yolo_level(lv.view(), lv.layout, {0.25f, false, mask}, identity(8, 8), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].class_id, 2);
}

TEST(YoloDecode, RejectsEmptyLevel) {
  std::vector<Detection> out;
  EXPECT_THROW(decode_yolo_level({}, HeadLayout{}, {}, identity(8, 8), out), std::invalid_argument);
}

// The fast path must give exactly the reference's candidates on random heads, odd sizes included.
class DecodeMatchesReference : public ::testing::TestWithParam<std::tuple<int, int, bool, bool>> {};

TEST_P(DecodeMatchesReference, RandomHeads) {
  const auto [h, w, multi, masked] = GetParam();
  std::mt19937 rng(h * 1000 + w);
  std::normal_distribution<float> bins(0.f, 3.f), cls(-6.f, 3.f);
  Level lv(h, w, 16, 16, 80);
  for (int c = 0; c < lv.layout.channels(); ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) lv.at(c, y, x) = c < 64 ? bins(rng) : cls(rng);
  lv.at(64 + 1, 0, 0) = 3.f;  // at least one survivor (class 1 passes the mask), even on a 1x1 level
  std::vector<std::uint8_t> mask(80, 1);
  for (int c = 0; c < 80; c += 3) mask[c] = 0;
  const DecodeParams p{0.2f, multi, masked ? mask.data() : nullptr};
  const auto lb = letterbox_params(w * 16 + 7, h * 16, w * 16, h * 16);
  std::vector<Detection> fast, ref;
  decode_yolo_level(lv.view(), lv.layout, p, lb, fast);
  decode_yolo_level_reference(lv.view(), lv.layout, p, lb, ref);
  ASSERT_GT(ref.size(), 0u);
  ASSERT_EQ(fast.size(), ref.size());
  // Both emit in cell order, then class order: compare position by position.
  for (std::size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(fast[i].class_id, ref[i].class_id);
    EXPECT_NEAR(fast[i].score, ref[i].score, 1e-6);
    EXPECT_NEAR(fast[i].x1, ref[i].x1, 1e-3);
    EXPECT_NEAR(fast[i].y1, ref[i].y1, 1e-3);
    EXPECT_NEAR(fast[i].x2, ref[i].x2, 1e-3);
    EXPECT_NEAR(fast[i].y2, ref[i].y2, 1e-3);
  }
}

// Decodes running as tasks of an outer TBB loop (as two pipelines or a user's parallel code would): a
// thread waiting inside one decode's parallel loop must not run another decode on its thread_local
// buffers (a use-after-free found in review).
TEST(YoloDecode, SafeUnderNestedParallelism) {
  std::vector<Level> levels;
  std::mt19937 rng(11);
  std::normal_distribution<float> d(-3.f, 3.f);
  for (int k = 0; k < 24; ++k) {
    levels.emplace_back(48 + k, 64, 8, 16, 80);  // >= 2048 cells: each decode runs its own parallel loop
    for (auto& v : levels.back().data) v = d(rng);
  }
  std::vector<std::vector<Detection>> serial(levels.size()), nested(levels.size());
  for (std::size_t k = 0; k < levels.size(); ++k)
    decode_yolo_level(levels[k].view(), levels[k].layout, {0.3f, false, nullptr}, identity(512, 600),
                      serial[k]);
  tbb::task_arena arena(8);
  arena.execute([&] {
    tbb::parallel_for(std::size_t{0}, levels.size(), [&](std::size_t k) {
      decode_yolo_level(levels[k].view(), levels[k].layout, {0.3f, false, nullptr}, identity(512, 600),
                        nested[k]);
    });
  });
  for (std::size_t k = 0; k < levels.size(); ++k) {
    ASSERT_EQ(nested[k].size(), serial[k].size()) << k;
    for (std::size_t i = 0; i < serial[k].size(); ++i) {
      EXPECT_EQ(nested[k][i].class_id, serial[k][i].class_id);
      EXPECT_EQ(nested[k][i].x1, serial[k][i].x1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, DecodeMatchesReference,
                         ::testing::Combine(::testing::Values(1, 15, 40), ::testing::Values(1, 20, 33),
                                            ::testing::Bool(), ::testing::Bool()));

}  // namespace aitw::kernel
