// aitw detect: images through the detector, one JSON line per image (jobs::run_detect_job).
#include <iostream>
#include <memory>

#include "aitw/base/defaults.hpp"
#include "aitw/jobs/detect.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "commands.hpp"

namespace aitw::tools {
Command add_detect(CLI::App& app, GlobalFlags& global) {
  auto job = std::make_shared<jobs::DetectJob>();
  job->detector.model_path = kDefaultModel;
  auto* detect = app.add_subcommand(
      "detect",
      "Detect objects in images; prints one JSON object per image (boxes in image pixels).\n"
      "Exit code: 0 ok, 1 some image could not be read, 2 the model is unusable.");
  detect->add_option("--model", job->detector.model_path, kModelHelp)->capture_default_str();
  add_model_dir_flag(*detect, global);
  detect
      ->add_option_function<std::string>(
          "--imgsz", [job](const std::string& s) { jobs::apply_imgsz(s, job->detector); },
          "network input: N = longer side, smallest multiple-of-32 rectangle (640x480 frame -> "
          "480x640); HxW = exactly that size (e.g. 640x640)")
      ->default_str("640")
      ->check(kImgsz);
  detect->add_option("--conf", job->detector.conf, "confidence threshold")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  detect->add_option("--iou", job->detector.iou, "NMS IoU threshold (class-aware)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  detect->add_option("--max-det", job->detector.max_det, "maximum detections per image")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  // One value per --classes, split at commas (never the IMAGE arguments that follow it).
  detect
      ->add_option("--classes", job->classes,
                   "only these classes: ids or names, comma-separated (0,2 or person,bus)")
      ->delimiter(',')
      ->allow_extra_args(false);
  detect->add_option("--annotate", job->annotate_dir,
                     "also write each image with boxes and labels drawn into DIR");
  add_precision_flag(*detect, job->detector.adapt.precision);
  detect->add_option("--threads", job->detector.threads, "OpenCV DNN threads (0 = OpenCV's default)")
      ->capture_default_str();
  detect->add_flag("--multi-label", job->detector.multi_label,
                   "keep every class above --conf per anchor (evaluation style), not only the best");
  add_registry_flag(*detect, global);
  detect->add_option("IMAGE", job->images, "image files")->required();
  return {detect, [job] { return jobs::run_detect_job(*job, std::cout); }};
}

}  // namespace aitw::tools
