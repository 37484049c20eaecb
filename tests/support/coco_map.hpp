#pragma once
// COCO-style detection mAP (bbox), following pycocotools COCOeval without crowd handling, area ranges or a
// maxDets cap: callers are expected to feed predictions that are already capped per image.

#include <cstdint>
#include <string>
#include <vector>

namespace aitw::eval {

struct BoxXYXY {
  float x1, y1, x2, y2;
};

struct GroundTruth {
  BoxXYXY box;
  int class_id;
};

struct Prediction {
  BoxXYXY box;
  int class_id;
  float score;
};

struct MapSummary {
  double map50 = 0, map75 = 0, map50_95 = 0;  // means over classes that have >= 1 ground truth
  int classes_with_gt = 0, num_gt = 0, num_predictions = 0, num_images = 0;
  std::vector<double> ap50_95_per_class;  // indexed by class id; -1 where the class has no ground truth
};

class MapEvaluator {
 public:
  // Matches the image's predictions against its ground truth right away, so only a few bytes per prediction
  // are retained. Throws std::invalid_argument (leaving the evaluator unchanged) on a negative class id, a
  // non-finite coordinate or a non-finite score.
  void add_image(const std::vector<GroundTruth>& gts, const std::vector<Prediction>& preds);
  MapSummary summarize() const;

 private:
  struct MatchRecord {
    float score;
    std::uint16_t tp_mask;  // bit t set: true positive at IoU threshold t (0.50, 0.55, ..., 0.95)
  };

  // Indexed by class id. Within a class, records are kept in image order and, inside an image, in matching
  // order; summarize() relies on that order for pycocotools-compatible tie-breaking between equal scores.
  std::vector<std::vector<MatchRecord>> records_per_class_;
  std::vector<int> gt_per_class_;
  int num_gt_ = 0;
  int num_predictions_ = 0;
  int num_images_ = 0;
};

// YOLO-format label file: one "class cx cy w h" per line, normalised to [0,1]; returns pixel xyxy boxes.
// A missing file means an image without objects (empty result); a malformed line throws std::runtime_error
// naming file and line. Blank lines are skipped. A path that exists but cannot be read also throws.
std::vector<GroundTruth> read_yolo_labels(const std::string& path, int img_w, int img_h);

}  // namespace aitw::eval
