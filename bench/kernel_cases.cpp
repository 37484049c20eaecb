#include "aitw/bench/kernel_cases.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/kernel/nms.hpp"
#include "aitw/kernel/preprocess.hpp"
#include "aitw/kernel/yolo_decode.hpp"
#include "aitw/model/onnx_model.hpp"

namespace aitw::bench {
namespace {

using kernel::Detection;
using kernel::LetterboxParams;

constexpr float kConf = 0.25f, kIou = 0.45f;
constexpr int kMaxDet = 300;

cv::Mat read_image(const std::string& path) {
  cv::Mat m = cv::imread(path);
  if (m.empty()) throw std::runtime_error("bench: cannot read " + path);
  return m;
}

// --- preprocess -----------------------------------------------------------------------------------

struct PreprocessState {
  cv::Mat frame;
  LetterboxParams lb;
  kernel::PreprocessPlan plan;
  std::vector<float> out;
  cv::Mat resized, padded, blob;  // the reused-buffer baseline
};

void opencv_preprocess(const cv::Mat& frame, const LetterboxParams& lb, cv::Mat& resized, cv::Mat& padded,
                       cv::Mat& blob) {
  const cv::Mat* src = &frame;
  if (lb.resized_width != frame.cols || lb.resized_height != frame.rows) {
    cv::resize(frame, resized, cv::Size(lb.resized_width, lb.resized_height), 0, 0, cv::INTER_LINEAR);
    src = &resized;
  }
  cv::copyMakeBorder(*src, padded, lb.pad_top, lb.dst_height - lb.resized_height - lb.pad_top, lb.pad_left,
                     lb.dst_width - lb.resized_width - lb.pad_left, cv::BORDER_CONSTANT,
                     cv::Scalar::all(114));
  cv::dnn::blobFromImage(padded, blob, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false);
}

void add_preprocess_cases(std::vector<KernelCase>& cases, const std::string& tag, cv::Mat frame) {
  auto s = std::make_shared<PreprocessState>();
  s->frame = std::move(frame);
  const auto in = kernel::auto_input_size(s->frame.cols, s->frame.rows, 640);
  s->lb = kernel::letterbox_params(s->frame.cols, s->frame.rows, in.width, in.height);
  s->out.resize(3u * in.width * in.height);
  s->plan.prepare(s->lb);
  auto ours = [s] {
    s->plan.prepare(s->lb);
    kernel::preprocess_letterbox({s->frame.data, s->frame.cols, s->frame.rows,
                                  static_cast<std::ptrdiff_t>(s->frame.step), kernel::PixelOrder::BGR},
                                 s->plan, s->out.data());
  };
  cases.push_back(
      {"preprocess_" + tag + "_fresh", "resize+copyMakeBorder+blobFromImage, new Mats per frame", ours, [s] {
         cv::Mat resized, padded, blob;
         opencv_preprocess(s->frame, s->lb, resized, padded, blob);
       }});
  cases.push_back({"preprocess_" + tag + "_reused", "resize+copyMakeBorder+blobFromImage, reused Mats", ours,
                   [s] { opencv_preprocess(s->frame, s->lb, s->resized, s->padded, s->blob); }});
}

// --- decode + NMS -----------------------------------------------------------------------------------

struct DecodeState {
  LetterboxParams lb;
  kernel::HeadLayout layout;
  std::vector<cv::Mat> levels;  // raw [1, C, H/s, W/s] outputs of the cut graph
  std::vector<int> strides;
  cv::Mat output0;  // the stock graph's [1, 4 + nc, A] output for the same input
  std::vector<Detection> candidates, result;
  std::vector<int> keep;
};

void ours_decode_nms(DecodeState& s) {
  s.candidates.clear();
  const kernel::DecodeParams dp{kConf, false, nullptr};
  for (std::size_t i = 0; i < s.levels.size(); ++i) {
    const cv::Mat& o = s.levels[i];
    kernel::decode_yolo_level({o.ptr<float>(), o.size[2], o.size[3], s.strides[i]}, s.layout, dp, s.lb,
                              s.candidates);
  }
  kernel::nms(s.candidates, {kIou, kMaxDet, false}, s.keep);
  s.result.clear();
  const float w = static_cast<float>(s.lb.src_width), h = static_cast<float>(s.lb.src_height);
  for (int k : s.keep) {
    Detection d = s.candidates[k];
    d.x1 = std::clamp(d.x1, 0.f, w);
    d.x2 = std::clamp(d.x2, 0.f, w);
    d.y1 = std::clamp(d.y1, 0.f, h);
    d.y2 = std::clamp(d.y2, 0.f, h);
    s.result.push_back(d);
  }
}

// What typical OpenCV YOLOv8 sample code does with output0: transpose to anchors x (4 + nc), minMaxLoc
// over each anchor's class scores, class-offset boxes, NMSBoxes, map back.
std::vector<Detection> opencv_decode_nms(const DecodeState& s) {
  const int rows = s.output0.size[1], anchors = s.output0.size[2];
  cv::Mat out(rows, anchors, CV_32F, const_cast<float*>(s.output0.ptr<float>()));
  cv::Mat t;
  cv::transpose(out, t);
  std::vector<cv::Rect2d> boxes;
  std::vector<float> scores;
  std::vector<int> ids;
  for (int i = 0; i < anchors; ++i) {
    const cv::Mat cls = t.row(i).colRange(4, rows);
    double maxv;
    cv::Point maxp;
    cv::minMaxLoc(cls, nullptr, &maxv, nullptr, &maxp);
    if (maxv <= kConf) continue;
    const float* p = t.ptr<float>(i);
    const double off = maxp.x * 7680.0;
    boxes.emplace_back(p[0] - p[2] / 2 + off, p[1] - p[3] / 2 + off, p[2], p[3]);
    scores.push_back(static_cast<float>(maxv));
    ids.push_back(maxp.x);
  }
  std::vector<int> keep;
  cv::dnn::NMSBoxes(boxes, scores, kConf, kIou, keep);  // no top_k: it would drop candidates before NMS
  if (keep.size() > static_cast<std::size_t>(kMaxDet)) keep.resize(kMaxDet);
  std::vector<Detection> result;
  const float w = static_cast<float>(s.lb.src_width), h = static_cast<float>(s.lb.src_height);
  for (int k : keep) {
    const auto& b = boxes[k];
    const double off = ids[k] * 7680.0;
    float x1 = static_cast<float>(b.x - off), y1 = static_cast<float>(b.y - off);
    float x2 = static_cast<float>(x1 + b.width), y2 = static_cast<float>(y1 + b.height);
    kernel::unletterbox_box(s.lb, x1, y1, x2, y2);
    result.push_back({std::clamp(x1, 0.f, w), std::clamp(y1, 0.f, h), std::clamp(x2, 0.f, w),
                      std::clamp(y2, 0.f, h), scores[k], ids[k]});
  }
  return result;
}

void add_decode_case(std::vector<KernelCase>& cases, const std::string& tag, std::shared_ptr<DecodeState> s) {
  cases.push_back({"decode_nms_" + tag, "transpose + per-anchor minMaxLoc + NMSBoxes on output0",
                   [s] { ours_decode_nms(*s); }, [s] { (void)opencv_decode_nms(*s); }});
}

std::vector<cv::Mat> run_graph(const model::AdaptedGraph& g, const cv::Mat& blob) {
  cv::dnn::Net net = model::load_net(g, "bench");
  net.setInput(blob);
  std::vector<cv::Mat> outs;
  net.forward(outs, g.output_names);
  for (auto& o : outs) o = o.clone();
  return outs;
}

// Real head outputs: the cut graph (ours) and the stock graph (baseline) on the same letterboxed image.
std::shared_ptr<DecodeState> real_outputs(const model::OnnxModel& model, const cv::Mat& img) {
  auto s = std::make_shared<DecodeState>();
  s->lb = kernel::letterbox_params(img.cols, img.rows, 640, 640);
  s->layout = model.head_layout();
  std::vector<float> blob_data(3u * 640 * 640);
  kernel::PreprocessPlan plan;
  plan.prepare(s->lb);
  kernel::preprocess_letterbox({img.data, img.cols, img.rows, static_cast<std::ptrdiff_t>(img.step)}, plan,
                               blob_data.data());
  const cv::Mat blob(std::vector<int>{1, 3, 640, 640}, CV_32F, blob_data.data());
  s->levels = run_graph(model.adapt({640, 640}), blob);
  for (const auto& lv : model.levels()) s->strides.push_back(lv.stride);
  model::AdaptOptions stock;
  stock.cut_head = false;
  stock.expand_stride_mul = true;  // the attention fix stays on so both paths see the same network
  s->output0 = run_graph(model.adapt({640, 640}, stock), blob)[0];
  return s;
}

// A synthetic crowd: ~2000 anchors above threshold with overlapping boxes, and the equivalent output0
// (DFL decoded, sigmoid scores) for the baseline.
std::shared_ptr<DecodeState> crowd(int survivors) {
  auto s = std::make_shared<DecodeState>();
  s->lb = kernel::letterbox_params(640, 480, 640, 640);
  s->layout = {16, 80};
  std::mt19937 rng(2024);
  std::normal_distribution<float> bins(0.f, 2.f);
  std::uniform_real_distribution<float> hot(-0.5f, 4.f);
  int anchors = 0;
  for (int stride : {8, 16, 32}) {
    const int h = 640 / stride, w = 640 / stride;
    cv::Mat lv(std::vector<int>{1, s->layout.channels(), h, w}, CV_32F);
    float* p = lv.ptr<float>();
    for (int c = 0; c < s->layout.channels(); ++c)
      for (int i = 0; i < h * w; ++i) p[c * h * w + i] = c < 64 ? bins(rng) : -8.f;
    s->levels.push_back(lv);
    s->strides.push_back(stride);
    anchors += h * w;
  }
  // Mark random anchors hot in a few classes, clustered so that NMS has real work.
  std::uniform_int_distribution<int> cls(0, 4);
  for (int k = 0; k < survivors; ++k) {
    const int li = k % 3;
    cv::Mat& lv = s->levels[li];
    const int hw = lv.size[2] * lv.size[3];
    const int cell = static_cast<int>(rng() % hw);
    lv.ptr<float>()[(64 + cls(rng)) * hw + cell] = hot(rng);
  }
  // output0 = what the stock head computes from these raw outputs.
  s->output0.create(std::vector<int>{1, 84, anchors}, CV_32F);
  float* o = s->output0.ptr<float>();
  int a = 0;
  for (std::size_t li = 0; li < s->levels.size(); ++li) {
    const cv::Mat& lv = s->levels[li];
    const int h = lv.size[2], w = lv.size[3], hw = h * w, st = s->strides[li];
    const float* p = lv.ptr<float>();
    for (int cell = 0; cell < hw; ++cell, ++a) {
      float d[4];
      for (int side = 0; side < 4; ++side) {
        float m = -1e30f, sum = 0, acc = 0;
        for (int b = 0; b < 16; ++b) m = std::max(m, p[(side * 16 + b) * hw + cell]);
        for (int b = 0; b < 16; ++b) {
          const float e = std::exp(p[(side * 16 + b) * hw + cell] - m);
          sum += e;
          acc += e * b;
        }
        d[side] = acc / sum;
      }
      const float cx = (cell % w + 0.5f), cy = (cell / w + 0.5f);
      const float x1 = cx - d[0], y1 = cy - d[1], x2 = cx + d[2], y2 = cy + d[3];
      o[0 * anchors + a] = (x1 + x2) / 2 * st;
      o[1 * anchors + a] = (y1 + y2) / 2 * st;
      o[2 * anchors + a] = (x2 - x1) * st;
      o[3 * anchors + a] = (y2 - y1) * st;
      for (int c = 0; c < 80; ++c)
        o[(4 + c) * anchors + a] = 1.f / (1.f + std::exp(-p[(64 + c) * hw + cell]));
    }
  }
  return s;
}

// Forward of the rewritten graph with aitw's custom layers vs the same graph with OpenCV's own layers.
// One DNN layer of `type` on a random input of `shape`: aitw's (the factory with the adapter's mark in
// `params`) against OpenCV's own (the same params without it), each on its own output. Their outputs must
// be identical (the layers are exact copies and maxima), checked once here.
void add_layer_case(std::vector<KernelCase>& cases, const std::string& name, const std::string& type,
                    cv::dnn::LayerParams params, const char* mark, int mark_value, std::vector<int> shape) {
  struct One {
    cv::Ptr<cv::dnn::Layer> layer;
    std::vector<cv::Mat> in, out, internals;
    void run() { layer->forward(in, out, internals); }
  };
  struct State {
    One ours, opencv;
  };
  kernel::register_dnn_layers();
  auto s = std::make_shared<State>();
  cv::Mat x(shape, CV_32F);
  cv::randu(x, -4.f, 4.f);
  params.name = name;
  params.type = type;
  cv::dnn::LayerParams marked = params;
  marked.set(mark, mark_value);
  auto set_up = [&](One& o, cv::dnn::LayerParams& p) {
    o.layer = cv::dnn::LayerFactory::createLayerInstance(type, p);
    if (!o.layer) throw std::runtime_error("bench: no " + type + " layer");
    std::vector<cv::dnn::MatShape> out_shapes, internal_shapes;
    o.layer->getMemoryShapes({cv::dnn::MatShape(x.size.p, x.size.p + x.dims)}, 1, out_shapes,
                             internal_shapes);
    o.in = {x};
    for (const auto& sh : out_shapes) o.out.emplace_back(sh, CV_32F);
    for (const auto& sh : internal_shapes) o.internals.emplace_back(sh, CV_32F);
    const cv::_InputArray in(o.in);
    const cv::_OutputArray out(o.out);
    o.layer->finalize(in, out);
  };
  set_up(s->ours, marked);
  set_up(s->opencv, params);
  s->ours.run();
  s->opencv.run();
  if (s->ours.out[0].total() != s->opencv.out[0].total() || !cv::checkRange(s->ours.out[0]) ||
      cv::norm(s->ours.out[0], s->opencv.out[0], cv::NORM_INF) != 0)  // (NORM_INF skips NaN)
    throw std::runtime_error("bench: " + name + ": aitw's layer disagrees with OpenCV's");
  cases.push_back({name, "OpenCV 4.6's " + type + " layer on the same input", [s] { s->ours.run(); },
                   [s] { s->opencv.run(); }});
}

// The forward of the graph aitw runs against the same model adapted with `baseline` (described by
// `against`), both on one preprocessed image. `exact`: the two must give identical outputs (checked here).
void add_forward_case(std::vector<KernelCase>& cases, const model::OnnxModel& model, const std::string& name,
                      const cv::Mat& img, kernel::InputSize size, const model::AdaptOptions& baseline,
                      const std::string& against, bool exact, const model::AdaptOptions& ours = {}) {
  struct State {
    cv::dnn::Net ours, opencv;
    std::vector<std::string> outs_ours, outs_opencv;
    cv::Mat blob;
    std::vector<cv::Mat> out;
  };
  auto s = std::make_shared<State>();
  const auto g_ours = model.adapt(size, ours);
  const auto g_opencv = model.adapt(size, baseline);
  s->ours = model::load_net(g_ours, "bench");
  s->opencv = model::load_net(g_opencv, "bench");
  s->outs_ours = model::forward_output_names(s->ours, g_ours);
  s->outs_opencv = model::forward_output_names(s->opencv, g_opencv);
  const auto lb = kernel::letterbox_params(img.cols, img.rows, size.width, size.height);
  s->blob.create(std::vector<int>{1, 3, size.height, size.width}, CV_32F);
  kernel::PreprocessPlan plan;
  plan.prepare(lb);
  kernel::preprocess_letterbox({img.data, img.cols, img.rows, static_cast<std::ptrdiff_t>(img.step)}, plan,
                               s->blob.ptr<float>());
  if (exact) {
    std::vector<cv::Mat> a, b;
    s->ours.setInput(s->blob);
    s->ours.forward(a, s->outs_ours);
    s->opencv.setInput(s->blob);
    s->opencv.forward(b, s->outs_opencv);
    for (std::size_t i = 0; i < a.size(); ++i)
      if (b.size() != a.size() || !cv::checkRange(a[i]) || cv::norm(a[i], b[i], cv::NORM_INF) != 0)
        throw std::runtime_error("bench: " + name + ": the two graphs disagree");
  }
  cases.push_back({name, against,
                   [s] {
                     s->ours.setInput(s->blob);
                     s->ours.forward(s->out, s->outs_ours);
                   },
                   [s] {
                     s->opencv.setInput(s->blob);
                     s->opencv.forward(s->out, s->outs_opencv);
                   }});
}

double time_calls(const std::function<void()>& f, int n) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::vector<KernelCase> make_kernel_cases(const std::string& shared_dir) {
  std::vector<KernelCase> cases;
  const cv::Mat bus = read_image(shared_dir + "/datasets/images/bus.jpg");
  const cv::Mat zidane = read_image(shared_dir + "/datasets/images/zidane.jpg");
  cv::Mat camera;
  cv::resize(bus, camera, cv::Size(640, 480), 0, 0, cv::INTER_AREA);  // a 640x480 camera-sized frame
  add_preprocess_cases(cases, "640x480", camera);
  add_preprocess_cases(cases, "1280x720", zidane.clone());

  const auto model = model::OnnxModel::load(shared_dir + "/models/yolo11n.onnx");
  add_decode_case(cases, "bus", real_outputs(model, bus));
  add_decode_case(cases, "zidane", real_outputs(model, zidane));
  add_decode_case(cases, "crowd2000", crowd(2000));
  // YOLO11n's neck at 480x640: the two 2x upsamplings, and SPPF's 5x5 max pool.
  cv::dnn::LayerParams resize;
  resize.set("interpolation", "nearest");
  resize.set("zoom_factor_x", 2);
  resize.set("zoom_factor_y", 2);
  add_layer_case(cases, "upsample2x_256x15x20", "Resize", resize, kernel::kResizeMark, 1, {1, 256, 15, 20});
  add_layer_case(cases, "upsample2x_128x30x40", "Resize", resize, kernel::kResizeMark, 1, {1, 128, 30, 40});
  cv::dnn::LayerParams pool;
  pool.set("pool", "max");
  pool.set("kernel_size", 5);
  pool.set("pad", 2);
  pool.set("stride", 1);
  add_layer_case(cases, "maxpool5x5_128x15x20", "Pooling", pool, kernel::kMaxPoolMark, 5, {1, 128, 15, 20});
  model::AdaptOptions opencv_layers;
  opencv_layers.custom_layers = false;
  const std::string opencv_desc = "same rewritten graph with OpenCV's own layers";
  const auto yolov8n = model::OnnxModel::load(shared_dir + "/models/yolov8n.onnx");
  add_forward_case(cases, model, "forward_yolo11n_480x640", bus, {480, 640}, opencv_layers, opencv_desc,
                   false);
  add_forward_case(cases, yolov8n, "forward_yolov8n_480x640", bus, {480, 640}, opencv_layers, opencv_desc,
                   false);
  // Concats and channel Splits read in place by the convolutions, against OpenCV copying them (identical
  // outputs, checked at set-up; the same graph twice where aitw's convolution does not run). The upsamplings
  // stay unfolded on both sides: folded, the sums split in two and the outputs differ by rounding.
  model::AdaptOptions copies, in_place;
  copies.read_in_place = false;
  in_place.fold_upsampling = false;
  add_forward_case(cases, yolov8n, "inplace_yolov8n_480x640", bus, {480, 640}, copies,
                   "same graph with OpenCV's Concat and Slice copies", true, in_place);
  // bf16 convolutions (AVX512_BF16) against fp32: the forward `--precision auto` gives on such CPUs (the
  // same graph twice elsewhere).
  model::AdaptOptions bf16, fp32;
  bf16.precision = kernel::conv_bf16_supported() ? kernel::ConvPrecision::Bf16 : kernel::ConvPrecision::Fp32;
  add_forward_case(cases, model, "bf16_yolo11n_480x640", bus, {480, 640}, fp32,
                   "same graph with fp32 convolutions", false, bf16);
  return cases;
}

std::vector<KernelResult> run_kernel_cases(const std::vector<KernelCase>& cases, int repetitions,
                                           double min_ms,
                                           const std::function<void(const KernelResult&)>& on_result) {
  std::vector<KernelResult> results;
  for (const auto& c : cases) {
    c.ours();
    c.opencv();  // warm caches and first-call allocations
    const int n_ours = std::max(1, static_cast<int>(min_ms / std::max(1e-3, time_calls(c.ours, 3))));
    const int n_base = std::max(1, static_cast<int>(min_ms / std::max(1e-3, time_calls(c.opencv, 3))));
    std::vector<double> ours, base, ratio;
    for (int r = 0; r < repetitions; ++r) {
      double o, b;
      if (r % 2 == 0) {
        o = time_calls(c.ours, n_ours);
        b = time_calls(c.opencv, n_base);
      } else {
        b = time_calls(c.opencv, n_base);
        o = time_calls(c.ours, n_ours);
      }
      ours.push_back(o);
      base.push_back(b);
      ratio.push_back(b / o);
    }
    KernelResult res{c.name, c.baseline, median(ours), median(base), median(ratio), repetitions};
    if (on_result) on_result(res);
    results.push_back(res);
  }
  return results;
}

}  // namespace aitw::bench
