#include "coco_map.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace aitw::eval {
namespace {

namespace fs = std::filesystem;

// Expected values below are derived by hand as exact fractions; 1e-12 only absorbs summation rounding.
constexpr double kTol = 1e-12;

GroundTruth gt(float x1, float y1, float x2, float y2, int cls = 0) {
  return {{x1, y1, x2, y2}, cls};
}
Prediction pred(float x1, float y1, float x2, float y2, float score, int cls = 0) {
  return {{x1, y1, x2, y2}, cls, score};
}

// Every AP below is a mean over the 101 recall thresholds r_i = i * 0.01 (i = 0..100), each taking the
// enveloped precision at the first rank whose cumulative recall is >= r_i, or 0 if there is none.

TEST(MapEvaluatorTest, EmptyEvaluatorReportsZero) {
  const MapSummary s = MapEvaluator{}.summarize();
  EXPECT_EQ(s.map50, 0.0);
  EXPECT_EQ(s.map75, 0.0);
  EXPECT_EQ(s.map50_95, 0.0);
  EXPECT_EQ(s.classes_with_gt, 0);
  EXPECT_EQ(s.num_images, 0);
  EXPECT_TRUE(s.ap50_95_per_class.empty());
}

TEST(MapEvaluatorTest, PerfectPredictionsScoreOne) {
  // Every prediction has IoU 1 with its own ground truth and 0 with the others, so at every threshold the
  // precision is 1 at every rank and the final recall is 1: all 101 samples are 1.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10, 0), gt(20, 20, 40, 50, 1)},
               {pred(20, 20, 40, 50, 0.3f, 1), pred(0, 0, 10, 10, 0.9f, 0)});
  ev.add_image({gt(5, 5, 15, 25, 1)}, {pred(5, 5, 15, 25, 0.8f, 1)});
  ev.add_image({}, {});
  const MapSummary s = ev.summarize();
  EXPECT_DOUBLE_EQ(s.map50, 1.0);
  EXPECT_DOUBLE_EQ(s.map75, 1.0);
  EXPECT_DOUBLE_EQ(s.map50_95, 1.0);
  EXPECT_EQ(s.classes_with_gt, 2);
  EXPECT_EQ(s.num_gt, 3);
  EXPECT_EQ(s.num_predictions, 3);
  EXPECT_EQ(s.num_images, 3);
  ASSERT_EQ(s.ap50_95_per_class.size(), 2u);
  EXPECT_DOUBLE_EQ(s.ap50_95_per_class[0], 1.0);
  EXPECT_DOUBLE_EQ(s.ap50_95_per_class[1], 1.0);
}

TEST(MapEvaluatorTest, NoPredictionsScoreZero) {
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10, 0), gt(0, 0, 10, 10, 2)}, {});
  const MapSummary s = ev.summarize();
  EXPECT_EQ(s.map50, 0.0);
  EXPECT_EQ(s.map75, 0.0);
  EXPECT_EQ(s.map50_95, 0.0);
  EXPECT_EQ(s.classes_with_gt, 2);
  ASSERT_EQ(s.ap50_95_per_class.size(), 3u);
  EXPECT_EQ(s.ap50_95_per_class[0], 0.0);  // has ground truth, so 0 rather than -1
  EXPECT_EQ(s.ap50_95_per_class[1], -1.0);
  EXPECT_EQ(s.ap50_95_per_class[2], 0.0);
}

TEST(MapEvaluatorTest, GroundTruthClassWithoutPredictionsPullsMeanDown) {
  // Class 0 is perfect (AP 1), class 1 has ground truth but no predictions (AP 0): mean (1 + 0) / 2.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10, 0), gt(50, 50, 60, 60, 1)}, {pred(0, 0, 10, 10, 0.9f, 0)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 0.5, kTol);
  EXPECT_NEAR(s.map50_95, 0.5, kTol);
  EXPECT_EQ(s.classes_with_gt, 2);
}

TEST(MapEvaluatorTest, FalsePositiveRankedAboveTruePositive) {
  // One GT. Ranked: FP (0.9, no overlap), TP (0.8, IoU 1) at every threshold.
  //   tp = [0, 1], fp = [1, 1], recall = [0, 1], precision = [0, 1/2] -> envelope [1/2, 1/2].
  //   r_0 = 0 -> rank 0 -> 1/2 (0 without the envelope); r_1..r_100 -> rank 1 -> 1/2.
  //   AP = 101 * (1/2) / 101 = 1/2 at all 10 thresholds.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10)}, {pred(0, 0, 10, 10, 0.8f), pred(100, 100, 110, 110, 0.9f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 0.5, kTol);
  EXPECT_NEAR(s.map75, 0.5, kTol);
  EXPECT_NEAR(s.map50_95, 0.5, kTol);
}

TEST(MapEvaluatorTest, PrecisionEnvelopeLiftsLaterDips) {
  // Three GTs, ranked TP FP FP TP TP (TPs exact, FPs far away), same at every threshold:
  //   tp = [1,1,1,2,3], fp = [0,1,2,2,2], recall = [1/3,1/3,1/3,2/3,1], precision = [1,1/2,1/3,1/2,3/5]
  //   envelope = [1, 3/5, 3/5, 3/5, 3/5].
  //   r_0..r_33 (<= 1/3): rank 0 -> 1           (34 samples)
  //   r_34..r_66 (<= 2/3): rank 3 -> 3/5         (33 samples; 1/2 without the envelope)
  //   r_67..r_100:          rank 4 -> 3/5        (34 samples)
  //   AP = (34 + 67 * 3/5) / 101 = 371/505.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10), gt(20, 0, 30, 10), gt(40, 0, 50, 10)},
               {pred(0, 0, 10, 10, 0.9f), pred(200, 0, 210, 10, 0.8f), pred(300, 0, 310, 10, 0.7f),
                pred(20, 0, 30, 10, 0.6f), pred(40, 0, 50, 10, 0.5f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 371.0 / 505.0, kTol);
  EXPECT_NEAR(s.map50_95, 371.0 / 505.0, kTol);
}

TEST(MapEvaluatorTest, IouExactlyOnThresholdCounts) {
  // GT 10x10 (area 100), prediction 10x7 inside it: IoU = 70 / (100 + 70 - 70) = 0.7, which is exactly the
  // 0.70 threshold. TP at 0.50, 0.55, 0.60, 0.65, 0.70 (AP 1), FP at 0.75..0.95 (AP 0).
  //   map50 = 1, map75 = 0, map50_95 = 5/10.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10)}, {pred(0, 0, 10, 7, 0.9f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 1.0, kTol);
  EXPECT_NEAR(s.map75, 0.0, kTol);
  EXPECT_NEAR(s.map50_95, 0.5, kTol);
}

TEST(MapEvaluatorTest, IouBetweenThresholdsAndOnTopThreshold) {
  // GT 100x1 in each class, prediction a prefix of it, so IoU = prediction width / 100.
  //   class 0: IoU 0.69 -> TP at 0.50..0.65 (4 of 10)  -> AP50:95 0.4, AP75 0
  //   class 1: IoU 0.74 -> TP at 0.50..0.70 (5 of 10)  -> AP50:95 0.5, AP75 0
  //   class 2: IoU 0.95 -> TP at all 10 (0.95 counts)  -> AP50:95 1.0, AP75 1
  //   map50 = 1, map75 = 1/3, map50_95 = (0.4 + 0.5 + 1.0) / 3 = 19/30.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 100, 1, 0), gt(0, 10, 100, 11, 1), gt(0, 20, 100, 21, 2)},
               {pred(0, 0, 69, 1, 0.9f, 0), pred(0, 10, 74, 11, 0.9f, 1), pred(0, 20, 95, 21, 0.9f, 2)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 1.0, kTol);
  EXPECT_NEAR(s.map75, 1.0 / 3.0, kTol);
  EXPECT_NEAR(s.map50_95, 19.0 / 30.0, kTol);
  ASSERT_EQ(s.ap50_95_per_class.size(), 3u);
  EXPECT_NEAR(s.ap50_95_per_class[0], 0.4, kTol);
  EXPECT_NEAR(s.ap50_95_per_class[1], 0.5, kTol);
  EXPECT_NEAR(s.ap50_95_per_class[2], 1.0, kTol);
}

TEST(MapEvaluatorTest, DuplicatePredictionIsFalsePositive) {
  // GTs A and B. Predictions (given out of score order on purpose): A at 0.9, a copy of A at 0.8, B at 0.7.
  // The copy finds A already taken and B at IoU 0, so it is a FP at every threshold.
  //   tp = [1,1,2], fp = [0,1,1], recall = [1/2,1/2,1], precision = [1,1/2,2/3] -> envelope [1,2/3,2/3].
  //   r_0..r_50 -> rank 0 -> 1 (51 samples); r_51..r_100 -> rank 2 -> 2/3 (50 samples).
  //   AP = (51 + 50 * 2/3) / 101 = 253/303. (Were the copy a TP, AP would be 1.)
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10), gt(50, 50, 60, 60)},
               {pred(50, 50, 60, 60, 0.7f), pred(0, 0, 10, 10, 0.8f), pred(0, 0, 10, 10, 0.9f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 253.0 / 303.0, kTol);
  EXPECT_NEAR(s.map50_95, 253.0 / 303.0, kTol);
}

TEST(MapEvaluatorTest, PredictionTakesBestIouGroundTruthNotFirst) {
  // A = [0,10], B = [4,14] (x extents, height 10). P = [3,13] at 0.9: IoU(P,A) = 70/130 ~ 0.538,
  // IoU(P,B) = 90/110 ~ 0.818. Q = A at 0.8: IoU(Q,A) = 1, IoU(Q,B) = 60/140 ~ 0.43.
  //   0.50..0.80 (7 thresholds): P takes B (best IoU), Q takes A -> AP 1. Taking the first GT above the
  //     threshold instead would give P A and leave Q a FP at 0.50.
  //   0.85..0.95 (3): P matches nothing (FP), Q takes A: ranked FP, TP for 2 GTs
  //     recall = [0,1/2], precision = [0,1/2] -> envelope [1/2,1/2]; r_0..r_50 -> 1/2, rest 0 -> 25.5/101.
  //   map50_95 = (7 + 3 * 25.5/101) / 10 = 1567/2020; map50 = map75 = 1.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10), gt(4, 0, 14, 10)}, {pred(3, 0, 13, 10, 0.9f), pred(0, 0, 10, 10, 0.8f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 1.0, kTol);
  EXPECT_NEAR(s.map75, 1.0, kTol);
  EXPECT_NEAR(s.map50_95, 1567.0 / 2020.0, kTol);
}

TEST(MapEvaluatorTest, EqualIouTieGoesToLastGroundTruth) {
  // pycocotools replaces its best match when a later GT has an IoU >= the current best, so exact ties go
  // to the last GT. A = [0,10], B = [4,14], P = [2,12] at 0.9: IoU(P,A) = IoU(P,B) = 80/120 = 2/3 exactly.
  // Q = A at 0.8: IoU(Q,A) = 1, IoU(Q,B) = 60/140 < 0.5.
  //   0.50..0.65 (4 thresholds): P takes B (the tie's last), Q takes A -> AP 1.
  //     (Ties to the first GT would give P A and make Q a FP: AP 51/101.)
  //   0.70..0.95 (6): P FP, Q TP -> 25.5/101 as in PredictionTakesBestIouGroundTruthNotFirst.
  //   map50 = 1, map50_95 = (4 + 6 * 25.5/101) / 10 = 557/1010.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10), gt(4, 0, 14, 10)}, {pred(2, 0, 12, 10, 0.9f), pred(0, 0, 10, 10, 0.8f)});
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 1.0, kTol);
  EXPECT_NEAR(s.map50_95, 557.0 / 1010.0, kTol);
}

TEST(MapEvaluatorTest, PredictionOfAnotherClassDoesNotMatch) {
  // The box is perfect but labelled class 1: class 0's GT is missed (AP 0) and class 1 has no GT, so it is
  // left out of the mean rather than counted as 0 or 1.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10, 0)}, {pred(0, 0, 10, 10, 0.9f, 1)});
  const MapSummary s = ev.summarize();
  EXPECT_EQ(s.map50, 0.0);
  EXPECT_EQ(s.classes_with_gt, 1);
  ASSERT_EQ(s.ap50_95_per_class.size(), 2u);
  EXPECT_EQ(s.ap50_95_per_class[0], 0.0);
  EXPECT_EQ(s.ap50_95_per_class[1], -1.0);
}

TEST(MapEvaluatorTest, ClassWithPredictionsButNoGroundTruthIsExcluded) {
  // Class 0 is perfect; class 3 only has (high-scoring) predictions and must not drag the mean to 1/2.
  MapEvaluator ev;
  ev.add_image({gt(0, 0, 10, 10, 0)}, {pred(0, 0, 10, 10, 0.5f, 0), pred(0, 0, 10, 10, 0.99f, 3)});
  ev.add_image({}, {pred(30, 30, 40, 40, 0.95f, 3)});
  const MapSummary s = ev.summarize();
  EXPECT_DOUBLE_EQ(s.map50, 1.0);
  EXPECT_DOUBLE_EQ(s.map50_95, 1.0);
  EXPECT_EQ(s.classes_with_gt, 1);
  EXPECT_EQ(s.num_predictions, 3);
  ASSERT_EQ(s.ap50_95_per_class.size(), 4u);
  EXPECT_DOUBLE_EQ(s.ap50_95_per_class[0], 1.0);
  EXPECT_EQ(s.ap50_95_per_class[1], -1.0);
  EXPECT_EQ(s.ap50_95_per_class[2], -1.0);
  EXPECT_EQ(s.ap50_95_per_class[3], -1.0);
}

TEST(MapEvaluatorTest, EqualScoresKeepImageOrder) {
  // One GT overall; a FP and a TP with the same score in different images. The stable sort keeps the
  // earlier image first, as pycocotools' mergesort does:
  //   FP image first: ranked FP, TP -> 1/2 (see FalsePositiveRankedAboveTruePositive).
  //   TP image first: ranked TP, FP -> precision [1, 1/2], recall [1, 1]: every r_i -> rank 0 -> AP 1.
  const std::vector<GroundTruth> with_gt = {gt(0, 0, 10, 10)};
  const std::vector<Prediction> tp = {pred(0, 0, 10, 10, 0.5f)};
  const std::vector<Prediction> fp = {pred(0, 0, 10, 10, 0.5f)};  // no GT in its image

  MapEvaluator fp_first;
  fp_first.add_image({}, fp);
  fp_first.add_image(with_gt, tp);
  EXPECT_NEAR(fp_first.summarize().map50_95, 0.5, kTol);

  MapEvaluator tp_first;
  tp_first.add_image(with_gt, tp);
  tp_first.add_image({}, fp);
  EXPECT_NEAR(tp_first.summarize().map50_95, 1.0, kTol);
}

TEST(MapEvaluatorTest, RecallThresholdsFollowNumpyLinspace) {
  // 20 images with one GT each; only the first 7 get an exact prediction. Final recall = 7/20 = 0.35 with
  // precision 1 throughout. np.linspace gives r_35 = 35 * 0.01 = 0.35000000000000003 > 0.35, so only
  // r_0..r_34 find a rank: AP = 35/101. (Thresholds computed as i / 100.0 would give 36/101.)
  MapEvaluator ev;
  for (int i = 0; i < 20; ++i) {
    const float x = static_cast<float>(i * 20);
    std::vector<Prediction> preds;
    if (i < 7) preds.push_back(pred(x, 0, x + 10, 10, 0.9f - 0.01f * static_cast<float>(i)));
    ev.add_image({gt(x, 0, x + 10, 10)}, preds);
  }
  const MapSummary s = ev.summarize();
  EXPECT_NEAR(s.map50, 35.0 / 101.0, kTol);
  EXPECT_NEAR(s.map50_95, 35.0 / 101.0, kTol);
  EXPECT_EQ(s.num_gt, 20);
  EXPECT_EQ(s.num_images, 20);
}

TEST(MapEvaluatorTest, InvalidInputThrowsAndLeavesEvaluatorUnchanged) {
  MapEvaluator ev;
  EXPECT_THROW(ev.add_image({gt(0, 0, 10, 10, -1)}, {}), std::invalid_argument);
  EXPECT_THROW(ev.add_image({gt(0, 0, 10, 10)}, {pred(0, 0, 10, 10, std::nanf(""))}), std::invalid_argument);
  EXPECT_THROW(ev.add_image({gt(0, 0, 10, 10)}, {pred(0, 0, 10, 10, 0.5f, -2)}), std::invalid_argument);
  const MapSummary s = ev.summarize();
  EXPECT_EQ(s.num_images, 0);
  EXPECT_EQ(s.num_gt, 0);
  EXPECT_TRUE(s.ap50_95_per_class.empty());
}

class ReadYoloLabelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("aitw_coco_map_test_" + std::to_string(rd()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(ReadYoloLabelsTest, ConvertsNormalisedCentreFormatToPixels) {
  // 640x480 image. Line 1: centre (320,240), size 160x240 -> [240,120,400,360].
  // Line 3 (after a blank line, CRLF ending): centre (64,96), size 128x48 -> [0,72,128,120].
  const std::string path = write("a.txt", "0 0.5 0.5 0.25 0.5\n\n7 0.1 0.2 0.2 0.1\r\n");
  const std::vector<GroundTruth> g = read_yolo_labels(path, 640, 480);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].class_id, 0);
  EXPECT_FLOAT_EQ(g[0].box.x1, 240.f);
  EXPECT_FLOAT_EQ(g[0].box.y1, 120.f);
  EXPECT_FLOAT_EQ(g[0].box.x2, 400.f);
  EXPECT_FLOAT_EQ(g[0].box.y2, 360.f);
  EXPECT_EQ(g[1].class_id, 7);
  EXPECT_FLOAT_EQ(g[1].box.x1, 0.f);
  EXPECT_FLOAT_EQ(g[1].box.y1, 72.f);
  EXPECT_FLOAT_EQ(g[1].box.x2, 128.f);
  EXPECT_FLOAT_EQ(g[1].box.y2, 120.f);
}

TEST_F(ReadYoloLabelsTest, MissingFileMeansNoObjects) {
  EXPECT_TRUE(read_yolo_labels((dir_ / "does_not_exist.txt").string(), 640, 480).empty());
  EXPECT_TRUE(read_yolo_labels(write("empty.txt", ""), 640, 480).empty());
}

TEST_F(ReadYoloLabelsTest, MalformedLineThrowsNamingFileAndLine) {
  const std::vector<std::string> bad_lines = {
      "0 0.5 0.5 0.2",           // too few fields
      "0 0.5 0.5 0.2 0.2 0.7",   // too many fields
      "person 0.5 0.5 0.2 0.2",  // non-numeric class
      "1.0 0.5 0.5 0.2 0.2",     // non-integer class
      "-1 0.5 0.5 0.2 0.2",      // negative class
      "0 0.5 abc 0.2 0.2",       // non-numeric coordinate
      "0 0.5 0.5x 0.2 0.2",      // trailing garbage
      "0 0.5 0.5 nan 0.2",       // not finite
      "0 1.5 0.5 0.2 0.2",       // not normalised
  };
  int n = 0;
  for (const std::string& bad : bad_lines) {
    const std::string path = write("bad" + std::to_string(n++) + ".txt", "3 0.5 0.5 0.1 0.1\n" + bad + "\n");
    try {
      read_yolo_labels(path, 640, 480);
      ADD_FAILURE() << "no exception for line '" << bad << "'";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(":2:"), std::string::npos) << msg;
    }
  }
}

TEST_F(ReadYoloLabelsTest, NonPositiveImageSizeThrows) {
  const std::string path = write("ok.txt", "0 0.5 0.5 0.25 0.5\n");
  EXPECT_THROW(read_yolo_labels(path, 0, 480), std::invalid_argument);
  EXPECT_THROW(read_yolo_labels(path, 640, -1), std::invalid_argument);
}

}  // namespace
}  // namespace aitw::eval
