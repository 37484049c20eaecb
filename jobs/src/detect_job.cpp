#include "aitw/jobs/detect.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <ostream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"

namespace aitw::jobs {
namespace fs = std::filesystem;
using model::ModelError;
using pipeline::Detector;
using pipeline::DetectResult;

namespace {
double round_to(double v, double scale) {
  return std::round(v * scale) / scale;
}
}  // namespace

nlohmann::json detection_json(const std::string& image, const cv::Size& frame, const DetectResult& r,
                              const Detector& detector) {
  nlohmann::json dets = nlohmann::json::array();
  const auto& names = detector.class_names();
  for (const auto& d : r.detections) {
    dets.push_back(
        {{"class_id", d.class_id},
         {"class_name", d.class_id < static_cast<int>(names.size()) ? names[d.class_id] : ""},
         {"score", round_to(d.score, 1e4)},
         {"box", {round_to(d.x1, 100), round_to(d.y1, 100), round_to(d.x2, 100), round_to(d.y2, 100)}}});
  }
  return {
      {"image", image},
      {"width", frame.width},
      {"height", frame.height},
      {"input", {r.input.height, r.input.width}},
      {"model",
       {{"name", fs::path(detector.model().label()).stem().string()}, {"sha256", detector.model().sha256()}}},
      {"detections", std::move(dets)},
      {"ms",
       {{"preprocess", round_to(r.ms.preprocess_ms, 1e3)},
        {"infer", round_to(r.ms.infer_ms, 1e3)},
        {"postprocess", round_to(r.ms.postprocess_ms, 1e3)}}}};
}

void draw_detections(cv::Mat& bgr, const std::vector<kernel::Detection>& dets,
                     const std::vector<std::string>& class_names) {
  const int thickness = std::max(1, static_cast<int>(std::lround(std::max(bgr.cols, bgr.rows) / 400.0)));
  const double font = 0.4 + 0.15 * thickness;
  for (const auto& d : dets) {
    // A stable colour per class: spread hues with the golden angle.
    cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar((d.class_id * 47) % 180, 220, 230)), rgb;
    cv::cvtColor(hsv, rgb, cv::COLOR_HSV2BGR);
    const cv::Vec3b c = rgb.at<cv::Vec3b>(0, 0);
    const cv::Scalar colour(c[0], c[1], c[2]);
    const cv::Point p1(static_cast<int>(d.x1), static_cast<int>(d.y1));
    const cv::Point p2(static_cast<int>(d.x2), static_cast<int>(d.y2));
    cv::rectangle(bgr, p1, p2, colour, thickness, cv::LINE_AA);
    const std::string name = d.class_id < static_cast<int>(class_names.size()) ? class_names[d.class_id]
                                                                               : std::to_string(d.class_id);
    const std::string label = name + " " + cv::format("%.2f", d.score);
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, font, thickness, &baseline);
    // Keep the label inside the frame for boxes touching the top or right edge.
    const int top = std::max(p1.y, ts.height + baseline + 2);
    const int left = std::max(0, std::min(p1.x, bgr.cols - ts.width - 2));
    cv::rectangle(bgr, cv::Point(left, top - ts.height - baseline - 2), cv::Point(left + ts.width + 2, top),
                  colour, cv::FILLED);
    cv::putText(bgr, label, cv::Point(left + 1, top - baseline - 1), cv::FONT_HERSHEY_SIMPLEX, font,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
  }
}

std::vector<int> resolve_classes(const std::vector<std::string>& selectors,
                                 const std::vector<std::string>& names) {
  std::vector<int> ids;
  for (const auto& s : selectors) {
    if (s.empty()) continue;
    if (s.find_first_not_of("0123456789") == std::string::npos) {
      int id = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
      if (ec != std::errc() || end != s.data() + s.size())
        throw std::invalid_argument("class id '" + s + "' is out of range");
      ids.push_back(id);
      continue;
    }
    auto it = std::find(names.begin(), names.end(), s);
    if (it == names.end())
      throw std::invalid_argument("unknown class '" + s + "' (not in the model's class names)");
    ids.push_back(static_cast<int>(it - names.begin()));
  }
  return ids;
}

int run_detect_job(DetectJob job, std::ostream& out) {
  std::optional<Detector> detector;
  try {
    job.detector.model_path = model::resolve_model_path(job.detector.model_path);
    detector.emplace(std::move(job.detector));
    // Names need the model's metadata: resolved once the model is loaded.
    if (!job.classes.empty()) detector->set_classes(resolve_classes(job.classes, detector->class_names()));
  } catch (const std::exception& e) {
    log_error(e.what());
    return 2;
  }
  if (!job.annotate_dir.empty()) {
    std::error_code ec;
    fs::create_directories(job.annotate_dir, ec);
    if (ec) {
      log_error("--annotate '" + job.annotate_dir + "': cannot create directory: " + ec.message());
      return 2;
    }
  }

  int failures = 0;
  for (const auto& path : job.images) {
    auto report_error = [&](const std::string& what) {
      ++failures;
      log_error("image '" + path + "': " + what);
      out << nlohmann::json{{"image", path}, {"error", what}}.dump() << "\n" << std::flush;
    };
    cv::Mat img;
    try {
      img = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
      img.release();
    }
    if (img.empty()) {
      report_error(fs::exists(path) ? "cannot decode image (corrupt or unsupported format)"
                                    : "file not found");
      continue;
    }
    try {
      DetectResult r = detector->detect(img);
      out << detection_json(path, img.size(), r, *detector).dump() << "\n" << std::flush;
      if (!job.annotate_dir.empty()) {
        draw_detections(img, r.detections, detector->class_names());
        const fs::path dst = fs::path(job.annotate_dir) / (fs::path(path).stem().string() + ".jpg");
        if (!cv::imwrite(dst.string(), img)) log_error("image '" + path + "': cannot write " + dst.string());
      }
    } catch (const model::ModelError& e) {
      log_error(e.what());
      return 2;
    } catch (const std::exception& e) {
      report_error(e.what());
    }
  }
  return failures ? 1 : 0;
}

}  // namespace aitw::jobs
