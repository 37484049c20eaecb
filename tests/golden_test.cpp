// Golden detections: aitw against the independent Python + OpenCV reference in shared/datasets/expected,
// at the reference's 640x640 letterbox, conf 0.25 and class-aware NMS 0.45; with the convolution kernels of
// the best level this CPU runs, and again with each lower level it runs forced (kernel::conv_force_isa: an
// AVX2-only or a baseline box's whole network, not only its layers one by one).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/pipeline/detector.hpp"

namespace aitw {
namespace {

const std::string kShared = AITW_SHARED_DIR;

float iou(const kernel::Detection& d, const std::vector<float>& b) {
  const float iw = std::min(d.x2, b[2]) - std::max(d.x1, b[0]);
  const float ih = std::min(d.y2, b[3]) - std::max(d.y1, b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const float inter = iw * ih;
  return inter / ((d.x2 - d.x1) * (d.y2 - d.y1) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// "best", or a lower level's name (kernel::conv_isa_name).
std::vector<std::string> levels() {
  std::vector<std::string> v{"best"};
  for (const auto isa : {kernel::ConvIsa::Avx512, kernel::ConvIsa::Avx2, kernel::ConvIsa::Portable})
    if (kernel::conv_isa_supported(isa) && isa != kernel::conv_best_isa())
      v.emplace_back(kernel::conv_isa_name(isa));
  return v;
}

class Golden : public ::testing::TestWithParam<std::tuple<std::string, std::string, std::string>> {
 protected:
  void TearDown() override { kernel::conv_force_isa(std::nullopt); }
};

TEST_P(Golden, SameDetectionsAsReference) {
  const auto& [model, image, level] = GetParam();
  for (const auto isa : {kernel::ConvIsa::Avx512, kernel::ConvIsa::Avx2, kernel::ConvIsa::Portable})
    if (level == kernel::conv_isa_name(isa)) kernel::conv_force_isa(isa);
  ASSERT_TRUE(level == "best" || kernel::conv_default_isa() != kernel::conv_best_isa()) << level;
  std::ifstream f(kShared + "/datasets/expected/" + model + "__" + image + ".json");
  ASSERT_TRUE(f) << "missing reference for " << model << " on " << image;
  const auto expected = nlohmann::json::parse(f);

  pipeline::DetectorConfig cfg;
  cfg.model_path = kShared + "/models/" + model + ".onnx";
  cfg.fixed_input = kernel::InputSize{640, 640};
  cfg.conf = 0.25f;
  cfg.iou = 0.45f;
  pipeline::Detector det(cfg);
  const cv::Mat img = cv::imread(kShared + "/datasets/images/" + image + ".jpg");
  ASSERT_FALSE(img.empty());
  ASSERT_EQ(img.rows, expected["image_hw"][0].get<int>());
  const auto r = det.detect(img);

  const auto& exp_dets = expected["detections"];
  ASSERT_EQ(r.detections.size(), exp_dets.size());
  std::vector<bool> used(r.detections.size(), false);
  for (const auto& e : exp_dets) {
    const auto box = e["box_xyxy"].get<std::vector<float>>();
    const int cls = e["class_id"].get<int>();
    // Pair with the best-overlapping unused detection of the same class.
    int best = -1;
    float best_iou = 0;
    for (std::size_t i = 0; i < r.detections.size(); ++i) {
      if (used[i] || r.detections[i].class_id != cls) continue;
      const float o = iou(r.detections[i], box);
      if (o > best_iou) best_iou = o, best = static_cast<int>(i);
    }
    ASSERT_GE(best, 0) << "no " << e["class_name"] << " matching " << e.dump();
    used[best] = true;
    const auto& d = r.detections[best];
    EXPECT_EQ(det.class_names()[d.class_id], e["class_name"].get<std::string>());
    EXPECT_NEAR(d.score, e["score"].get<float>(), 0.01);
    EXPECT_NEAR(d.x1, box[0], 2.0);
    EXPECT_NEAR(d.y1, box[1], 2.0);
    EXPECT_NEAR(d.x2, box[2], 2.0);
    EXPECT_NEAR(d.y2, box[3], 2.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Golden,
                         ::testing::Combine(::testing::Values("yolo11n", "yolov8n"),
                                            ::testing::Values("bus", "zidane"),
                                            ::testing::ValuesIn(levels())),
                         [](const auto& param_info) {
                           const auto& level = std::get<2>(param_info.param);
                           return std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param) +
                                  (level == "best" ? "" : "_" + level);
                         });

}  // namespace
}  // namespace aitw
