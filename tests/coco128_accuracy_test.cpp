// Accuracy on shared/datasets/coco128 with the project's COCO-style evaluator (IoU 0.50:0.95, 101-point
// interpolation): conf 0.001, class-aware NMS IoU 0.7, max-det 300, as in the reference run of
// shared/SOURCES.md (yolo11n mAP50-95 0.495, yolov8n 0.453 at 640x640).
#include <gtest/gtest.h>

#include <filesystem>
#include <iomanip>
#include <iostream>

#include <opencv2/imgcodecs.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/pipeline/detector.hpp"
#include "coco_map.hpp"

namespace aitw {
namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;

struct Accuracy {
  eval::MapSummary summary;
  double infer_ms_mean = 0;
};

Accuracy evaluate(const std::string& model, std::optional<kernel::InputSize> fixed, bool multi_label,
                  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32) {
  pipeline::DetectorConfig cfg;
  cfg.adapt.precision = precision;
  cfg.model_path = kShared + "/models/" + model + ".onnx";
  cfg.fixed_input = fixed;
  cfg.conf = 0.001f;
  cfg.iou = 0.7f;
  cfg.max_det = 300;
  cfg.multi_label = multi_label;
  pipeline::Detector det(cfg);

  const fs::path images = fs::path(kShared) / "datasets/coco128/images/train2017";
  const fs::path labels = fs::path(kShared) / "datasets/coco128/labels/train2017";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(images))
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  std::sort(files.begin(), files.end());

  eval::MapEvaluator evaluator;
  Accuracy acc;
  for (const auto& f : files) {
    const cv::Mat img = cv::imread(f.string());
    if (img.empty()) throw std::runtime_error("cannot read " + f.string());
    const auto r = det.detect(img);
    acc.infer_ms_mean += r.ms.infer_ms / static_cast<double>(files.size());
    std::vector<eval::Prediction> preds;
    for (const auto& d : r.detections) preds.push_back({{d.x1, d.y1, d.x2, d.y2}, d.class_id, d.score});
    evaluator.add_image(
        eval::read_yolo_labels((labels / (f.stem().string() + ".txt")).string(), img.cols, img.rows), preds);
  }
  acc.summary = evaluator.summarize();
  return acc;
}

void report(const std::string& what, const Accuracy& a) {
  std::cout << std::fixed << std::setprecision(4) << "[coco128] " << what << ": mAP50-95 "
            << a.summary.map50_95 << ", mAP50 " << a.summary.map50 << " (" << a.summary.num_images
            << " images, " << a.summary.num_gt << " boxes, " << a.summary.classes_with_gt
            << " classes; forward " << std::setprecision(1) << a.infer_ms_mean << " ms mean)" << std::endl;
  ::testing::Test::RecordProperty(what + " mAP50-95", std::to_string(a.summary.map50_95));
}

class Coco128 : public ::testing::TestWithParam<std::tuple<std::string, double>> {};

TEST_P(Coco128, MeetsReferenceAtSquareInputAndReportsRectangular) {
  const auto& [model, min_map] = GetParam();
  const auto square = evaluate(model, kernel::InputSize{640, 640}, /*multi_label=*/false);
  report(model + " 640x640", square);
  EXPECT_EQ(square.summary.num_images, 128);
  EXPECT_EQ(square.summary.num_gt, 929);  // shared/SOURCES.md: 128 images, 929 boxes
  EXPECT_GE(square.summary.map50_95, min_map);

  const auto rect = evaluate(model, std::nullopt, /*multi_label=*/false);
  report(model + " rect (imgsz 640)", rect);
  // Rectangular input sees the same pixels with less padding: it must not lose real accuracy.
  EXPECT_GE(rect.summary.map50_95, min_map - 0.02);

  // bf16 convolutions (--precision bf16, and what `auto` picks on such CPUs) hold the same gate.
  if (kernel::conv_bf16_supported() && kernel::aitw_convolution_active()) {
    const auto bf16 =
        evaluate(model, kernel::InputSize{640, 640}, /*multi_label=*/false, kernel::ConvPrecision::Bf16);
    report(model + " 640x640 bf16", bf16);
    EXPECT_GE(bf16.summary.map50_95, min_map);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Coco128,
                         ::testing::Values(std::make_tuple("yolo11n", 0.49),
                                           std::make_tuple("yolov8n", 0.445)),
                         [](const auto& param_info) { return std::get<0>(param_info.param); });

}  // namespace
}  // namespace aitw
