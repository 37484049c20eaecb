#pragma once
// One image in, detections out: letterbox, the adapted network, decode and NMS. Thread-compatible (one
// Detector per thread); the pipeline issue builds the concurrent engine on top of it.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "aitw/kernel/detection.hpp"
#include "aitw/kernel/nms.hpp"
#include "aitw/kernel/preprocess.hpp"
#include "aitw/kernel/yolo_decode.hpp"
#include "aitw/model/onnx_model.hpp"

namespace aitw::pipeline {

using kernel::InputSize;

struct DetectorConfig {
  std::string model_path;
  std::string names_file;                // fallback class names when the model has none
  int imgsz = 640;                       // longer side of the letterboxed frame (rectangular input)
  std::optional<InputSize> fixed_input;  // forces this input size (e.g. 640x640)
  float conf = 0.25f;
  float iou = 0.45f;
  int max_det = 300;
  std::vector<int> classes;  // empty = all
  bool multi_label = false;
  int threads = 0;  // OpenCV DNN threads; 0 keeps OpenCV's default
  model::AdaptOptions adapt;
};

struct StageTimes {
  double preprocess_ms = 0, infer_ms = 0, postprocess_ms = 0;
};

struct DetectResult {
  std::vector<kernel::Detection> detections;  // frame pixels, clipped, descending score
  InputSize input;
  kernel::LetterboxParams letterbox;
  StageTimes ms;
};

// Per-frame working buffers, owned by the caller and reused frame after frame.
struct FrameWork {
  kernel::LetterboxParams letterbox;
  InputSize input;
  kernel::PreprocessPlan plan;
  kernel::ImageView image;  // the frame prepare() planned: infer preprocesses it, so it must outlive infer
  std::vector<kernel::Detection> candidates;  // decoded by infer, kept by finish
  std::vector<int> keep;
  double preprocess_ms = 0;  // infer's preprocessing
};

// What decode + NMS keep of a frame's raw head outputs: thresholds and a class filter. The network does not
// depend on them, so callers with different ones (the server's sessions) can share one detector.
struct PostOptions {
  float conf = 0.25f;
  float iou = 0.45f;
  int max_det = 300;
  std::vector<std::uint8_t> class_mask;  // per class id, 1 = keep; empty = all
};

class Detector {
 public:
  explicit Detector(DetectorConfig config);  // throws model::ModelError

  DetectResult detect(const cv::Mat& bgr);  // 8-bit BGR, any size: prepare + infer + finish, timed
  InputSize input_size_for(int width, int height) const;

  // The stages, for the pipeline. prepare and finish only read the detector (safe from several threads
  // on different FrameWork); infer runs this detector's network (one caller at a time).
  // prepare plans the letterbox; infer preprocesses the frame straight into the network's own input buffer,
  // runs it and decodes the heads from its own output buffers (no copies: the next forward overwrites
  // them, so both happen here); finish keeps the candidates (NMS). `options` replaces the detector's own
  // thresholds and class filter when given; infer and finish take the same.
  void prepare(const kernel::ImageView& frame, FrameWork& work) const;
  void infer(FrameWork& work, const PostOptions* options = nullptr);
  void finish(FrameWork& work, std::vector<kernel::Detection>& out,
              const PostOptions* options = nullptr) const;
  // The detector's options with these overrides (conf/iou/max_det <= 0: the detector's own; classes empty:
  // its own filter). Throws model::ModelError for a class id the model does not have.
  PostOptions post_options(float conf, float iou, int max_det, const std::vector<int>& classes) const;
  // Builds (and warms up) the network for an input size ahead of the first frame.
  void warm_up(InputSize size) { network_for(size); }

  const model::OnnxModel& model() const { return model_; }
  const std::vector<std::string>& class_names() const { return model_.metadata().class_names; }
  const DetectorConfig& config() const { return config_; }
  // Only these class ids (empty = all); throws model::ModelError for an id the model does not have.
  void set_classes(const std::vector<int>& classes);

 private:
  struct Network {
    cv::dnn::Net net;
    std::vector<std::string> names;        // the head levels' layers, then the input layer's
    std::vector<std::vector<cv::Mat>> io;  // forward's headers of the net's own buffers, for `names`
    cv::Mat input;                         // [1, 3, H, W]: the net's input buffer (io.back()[0])
  };
  Network& network_for(InputSize size);

  DetectorConfig config_;
  model::OnnxModel model_;
  std::map<std::pair<int, int>, Network> networks_;
  PostOptions post_;  // from config_
  FrameWork work_;    // detect()'s buffers
};

}  // namespace aitw::pipeline
