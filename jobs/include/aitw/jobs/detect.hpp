#pragma once
// `aitw detect`: images from disk through a Detector, one JSON line per image, optional annotated copies.
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "aitw/pipeline/detector.hpp"

namespace aitw::jobs {

struct DetectJob {
  pipeline::DetectorConfig detector;
  std::vector<std::string> classes;  // ids or names, resolved against the model's names
  std::string annotate_dir;          // empty = no annotated images
  std::vector<std::string> images;
};

// Exit status: 0 all images processed, 1 some image failed (the others still are), 2 the model is unusable.
int run_detect_job(DetectJob job, std::ostream& out);

// The JSON object of one result (the format `aitw detect` prints).
nlohmann::json detection_json(const std::string& image, const cv::Size& frame,
                              const pipeline::DetectResult& r, const pipeline::Detector& detector);
// Draws boxes and labels onto `bgr`.
void draw_detections(cv::Mat& bgr, const std::vector<kernel::Detection>& dets,
                     const std::vector<std::string>& class_names);
// Maps "0,bus,person" style class selectors to ids; throws std::invalid_argument on unknown names.
std::vector<int> resolve_classes(const std::vector<std::string>& selectors,
                                 const std::vector<std::string>& names);

}  // namespace aitw::jobs
