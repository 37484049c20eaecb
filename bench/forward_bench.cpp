// Forward time of the stock Ultralytics graph vs aitw's rewritten graph, in one process.
// "stock" is the export as shipped plus the one change OpenCV 4.6 needs to run it at all (the head's
// stride constant expanded to [1,4,A]); its YOLO11 output is also degraded by the fusion bug, so it is a
// timing baseline only. "rewritten" is what aitw runs: head cut, attention fix, input re-targeted.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "aitw/pipeline/model_adapter.hpp"

namespace {

using aitw::pipeline::AdaptOptions;
using aitw::pipeline::InputSize;
using aitw::pipeline::OnnxModel;

std::string shared_dir() {
  const char* env = std::getenv("AITW_SHARED_DIR");
  return env && *env ? env : AITW_SHARED_DIR;
}

void forward(benchmark::State& state, const std::string& model_name, InputSize size, bool stock) {
  const auto model = OnnxModel::load(shared_dir() + "/models/" + model_name + ".onnx");
  AdaptOptions opt;
  if (stock) {
    opt.cut_head = false;
    opt.fix_attention = false;
    opt.expand_stride_mul = true;
  }
  const auto g = model.adapt(size, opt);
  cv::dnn::Net net = aitw::pipeline::load_net(g, "bench");
  const cv::Mat img = cv::imread(shared_dir() + "/datasets/images/bus.jpg");
  const cv::Mat blob = cv::dnn::blobFromImage(img, 1 / 255.0, cv::Size(size.width, size.height), {}, true);
  std::vector<cv::Mat> outs;
  net.setInput(blob);
  net.forward(outs, g.output_names);  // first run allocates
  for (auto _ : state) {
    net.setInput(blob);
    net.forward(outs, g.output_names);
    benchmark::DoNotOptimize(outs.data());
  }
  state.counters["threads"] = cv::getNumThreads();
}

}  // namespace

BENCHMARK_CAPTURE(forward, yolo11n_stock_640x640, "yolo11n", InputSize{640, 640}, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, yolo11n_rewritten_640x640, "yolo11n", InputSize{640, 640}, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, yolo11n_rewritten_480x640, "yolo11n", InputSize{480, 640}, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, yolov8n_stock_640x640, "yolov8n", InputSize{640, 640}, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, yolov8n_rewritten_640x640, "yolov8n", InputSize{640, 640}, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, yolov8n_rewritten_480x640, "yolov8n", InputSize{480, 640}, false)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
