// Forward time of the stock Ultralytics graph vs aitw's rewritten graph, in one process.
// "stock" is the export as shipped plus the one change OpenCV 4.6 needs to run it at all (the head's
// stride constant expanded to [1,4,A]); its YOLO11 output is also degraded by the fusion bug, so it is a
// timing baseline only. "opencv_layers" is the rewritten graph (head cut, attention fix, input
// re-targeted) with OpenCV's own layers; "aitw_layers" adds aitw's custom layers: what aitw runs.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "aitw/model/onnx_model.hpp"

namespace {

using aitw::model::AdaptOptions;
using aitw::model::InputSize;
using aitw::model::OnnxModel;

std::string shared_dir() {
  const char* env = std::getenv("AITW_SHARED_DIR");
  return env && *env ? env : AITW_SHARED_DIR;
}

enum class Graph { Stock, OpenCvLayers, AitwLayers };

void forward(benchmark::State& state, const std::string& model_name, InputSize size, Graph graph) {
  const auto model = OnnxModel::load(shared_dir() + "/models/" + model_name + ".onnx");
  AdaptOptions opt;
  if (graph == Graph::Stock) {
    opt.cut_head = false;
    opt.fix_attention = false;
    opt.custom_layers = false;
    opt.expand_stride_mul = true;
  }
  if (graph == Graph::OpenCvLayers) opt.custom_layers = false;
  const auto g = model.adapt(size, opt);
  cv::dnn::Net net = aitw::model::load_net(g, "bench");
  const auto outputs = aitw::model::forward_output_names(net, g);
  const cv::Mat img = cv::imread(shared_dir() + "/datasets/images/bus.jpg");
  const cv::Mat blob = cv::dnn::blobFromImage(img, 1 / 255.0, cv::Size(size.width, size.height), {}, true);
  std::vector<cv::Mat> outs;
  net.setInput(blob);
  net.forward(outs, outputs);  // first run allocates
  for (auto _ : state) {
    net.setInput(blob);
    net.forward(outs, outputs);
    benchmark::DoNotOptimize(outs.data());
  }
  state.counters["threads"] = cv::getNumThreads();
}

}  // namespace

#define AITW_FORWARD(model, name, h, w, graph)                                                  \
  BENCHMARK_CAPTURE(forward, model##_##name##_##h##x##w, #model, InputSize{h, w}, Graph::graph) \
      ->Unit(benchmark::kMillisecond)

AITW_FORWARD(yolo11n, stock, 640, 640, Stock);
AITW_FORWARD(yolo11n, opencv_layers, 640, 640, OpenCvLayers);
AITW_FORWARD(yolo11n, aitw_layers, 640, 640, AitwLayers);
AITW_FORWARD(yolo11n, opencv_layers, 480, 640, OpenCvLayers);
AITW_FORWARD(yolo11n, aitw_layers, 480, 640, AitwLayers);
AITW_FORWARD(yolov8n, stock, 640, 640, Stock);
AITW_FORWARD(yolov8n, opencv_layers, 640, 640, OpenCvLayers);
AITW_FORWARD(yolov8n, aitw_layers, 640, 640, AitwLayers);
AITW_FORWARD(yolov8n, opencv_layers, 480, 640, OpenCvLayers);
AITW_FORWARD(yolov8n, aitw_layers, 480, 640, AitwLayers);

BENCHMARK_MAIN();
