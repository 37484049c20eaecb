#include "aitw/pipeline/detector.hpp"

#include <algorithm>

#include "aitw/base/log.hpp"
#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/model/class_names.hpp"

namespace aitw::pipeline {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Detector::Detector(DetectorConfig config)
    : config_(std::move(config)),
      model_(model::OnnxModel::load(config_.model_path, config_.names_file.empty()
                                                            ? model::find_names_file(config_.model_path)
                                                            : config_.names_file)) {
  if (config_.threads > 0) cv::setNumThreads(config_.threads);
  // A wrong $AITW_CONV_ISA or $AITW_PARALLEL is a load error naming it (kernel::conv_default_isa,
  // kernel::parallel_loops throw), not one per frame when the first network is built.
  if (kernel::aitw_convolution_active()) (void)kernel::conv_default_isa();
  (void)kernel::parallel_loops();
  set_classes(config_.classes);
  if (config_.fixed_input) network_for(*config_.fixed_input);
}

PostOptions Detector::post_options(float conf, float iou, int max_det,
                                   const std::vector<int>& classes) const {
  PostOptions o;
  o.conf = conf > 0 ? conf : config_.conf;
  o.iou = iou > 0 ? iou : config_.iou;
  o.max_det = max_det > 0 ? max_det : config_.max_det;
  const auto& ids = classes.empty() ? config_.classes : classes;
  const int nc = model_.head_layout().num_classes;
  if (!ids.empty()) {
    o.class_mask.assign(nc, 0);
    for (int c : ids) {
      if (c < 0 || c >= nc)
        throw model::ModelError("class id " + std::to_string(c) + " out of range: model '" +
                                config_.model_path + "' has " + std::to_string(nc) + " classes");
      o.class_mask[c] = 1;
    }
  }
  return o;
}

void Detector::set_classes(const std::vector<int>& classes) {
  auto o = post_options(0, 0, 0, classes);
  if (classes.empty()) o.class_mask.clear();
  config_.classes = classes;
  post_ = std::move(o);
}

InputSize Detector::input_size_for(int width, int height) const {
  if (config_.fixed_input) return *config_.fixed_input;
  return kernel::auto_input_size(width, height, config_.imgsz, model_.metadata().max_stride);
}

Detector::Network& Detector::network_for(InputSize size) {
  const auto key = std::make_pair(size.height, size.width);
  if (auto it = networks_.find(key); it != networks_.end()) return it->second;
  const auto t0 = std::chrono::steady_clock::now();
  model::AdaptedGraph g = model_.adapt(size, config_.adapt);
  Network n;
  n.net = model::load_net(g, model_.label());
  n.names = model::forward_output_names(n.net, g);
  // The input layer (OpenCV names it "_input") among the outputs: forward's std::vector<std::vector<Mat>>
  // overload hands back headers of the net's own buffers, the input's too. The frames are preprocessed
  // straight into that buffer, so setInput (which copies unless the data is already its own: Mat::copyTo)
  // and the outputs (the other overload copies them into the caller's Mats) cost no 3.6 MB copy each.
  n.names.push_back("_input");
  // One forward on a blank input: checks that the rewritten graph runs at this size and has the expected
  // level shapes, and takes the first-run allocation cost out of the first real frame.
  try {
    cv::Mat probe(std::vector<int>{1, 3, size.height, size.width}, CV_32F, cv::Scalar(114.f / 255.f));
    n.net.setInput(probe);
    n.net.forward(n.io, n.names);
    for (std::size_t i = 0; i < g.levels.size(); ++i) {
      const auto& lv = g.levels[i];
      const cv::Mat& o = n.io[i].front();
      if (o.dims != 4 || o.size[1] != model_.head_layout().channels() ||
          o.size[2] != size.height / lv.stride || o.size[3] != size.width / lv.stride)
        throw model::ModelError("model '" + model_.label() + "': head level at stride " +
                                std::to_string(lv.stride) + " has an unexpected output shape");
    }
    n.input = n.io.back().front();
    if (n.input.dims != 4 || n.input.size[0] != 1 || n.input.size[1] != 3 || n.input.size[2] != size.height ||
        n.input.size[3] != size.width || n.input.type() != CV_32F || !n.input.isContinuous())
      throw model::ModelError("model '" + model_.label() + "': the network's input buffer is not [1, 3, " +
                              std::to_string(size.height) + ", " + std::to_string(size.width) + "] fp32");
  } catch (const cv::Exception& e) {
    throw model::ModelError("model '" + model_.label() + "': OpenCV DNN cannot run the rewritten graph at " +
                            std::to_string(size.height) + "x" + std::to_string(size.width) + ": " + e.what());
  }
  log_info("model '" + model_.label() + "' (sha256 " + model_.sha256().substr(0, 12) + "): " + g.summary() +
           "; ready in " + std::to_string(static_cast<int>(ms_since(t0))) + " ms");
  return networks_.emplace(key, std::move(n)).first->second;
}

void Detector::prepare(const kernel::ImageView& frame, FrameWork& w) const {
  w.input = input_size_for(frame.width, frame.height);
  w.letterbox = kernel::letterbox_params(frame.width, frame.height, w.input.width, w.input.height);
  w.plan.prepare(w.letterbox);
  w.image = frame;
  w.preprocess_ms = 0;
}

void Detector::infer(FrameWork& w, const PostOptions* options) {
  Network& n = network_for(w.input);
  const auto t0 = std::chrono::steady_clock::now();
  kernel::preprocess_letterbox(w.image, w.plan, n.input.ptr<float>());
  w.preprocess_ms = ms_since(t0);
  n.net.setInput(n.input);  // its own buffer: no copy
  n.net.forward(n.io, n.names);
  n.input = n.io.back().front();  // the same buffer unless OpenCV planned the net again

  const PostOptions& o = options ? *options : post_;
  w.candidates.clear();
  kernel::DecodeParams dp;
  dp.conf_threshold = o.conf;
  dp.multi_label = config_.multi_label;
  dp.class_mask = o.class_mask.empty() ? nullptr : o.class_mask.data();
  const auto& levels = model_.levels();
  for (std::size_t i = 0; i < levels.size() && i + 1 < n.io.size(); ++i) {
    const cv::Mat& level = n.io[i].front();
    kernel::HeadLevelView view{level.ptr<float>(), level.size[2], level.size[3], levels[i].stride};
    kernel::decode_yolo_level(view, model_.head_layout(), dp, w.letterbox, w.candidates);
  }
}

void Detector::finish(FrameWork& w, std::vector<kernel::Detection>& out, const PostOptions* options) const {
  const PostOptions& o = options ? *options : post_;
  auto& candidates = w.candidates;
  auto& keep = w.keep;
  kernel::nms(candidates, {o.iou, o.max_det, false}, keep);
  out.clear();
  out.reserve(keep.size());
  const float fw = static_cast<float>(w.letterbox.src_width), fh = static_cast<float>(w.letterbox.src_height);
  for (int k : keep) {
    kernel::Detection d = candidates[k];
    d.x1 = std::clamp(d.x1, 0.f, fw);
    d.x2 = std::clamp(d.x2, 0.f, fw);
    d.y1 = std::clamp(d.y1, 0.f, fh);
    d.y2 = std::clamp(d.y2, 0.f, fh);
    out.push_back(d);
  }
}

DetectResult Detector::detect(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw std::invalid_argument("detect: expected a non-empty 8-bit BGR image");
  DetectResult r;
  auto t0 = std::chrono::steady_clock::now();
  prepare({bgr.data, bgr.cols, bgr.rows, static_cast<std::ptrdiff_t>(bgr.step), kernel::PixelOrder::BGR},
          work_);
  const double plan_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  infer(work_);
  r.ms.preprocess_ms = plan_ms + work_.preprocess_ms;
  r.ms.infer_ms = ms_since(t0) - work_.preprocess_ms;
  t0 = std::chrono::steady_clock::now();
  finish(work_, r.detections);
  r.ms.postprocess_ms = ms_since(t0);
  r.input = work_.input;
  r.letterbox = work_.letterbox;
  return r;
}

}  // namespace aitw::pipeline
