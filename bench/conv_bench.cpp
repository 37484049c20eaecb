// aitw_conv_bench: every convolution of a model at an input size, timed per route on the layer's real shape
// and weights, interleaved (each repetition runs every route once, in a rotating order), medians reported.
//   ./build/bench/aitw_conv_bench [--model yolo11n] [--imgsz 480x640] [--repetitions 7] [--min-ms 4]
//                                 [--threads 2] [--routes
//                                 opencv,aitw,aitw_bf16,aitw_bf16_pairs,aitw_wino,aitw_direct,aitw_wino44,dnnl,
//                                 dnnl_blocked,dnnl_tbb,aitw_1t]
//                                 [--isa avx512|avx2|portable] [--layer N] [--clock wall|cpu]
//                                 [--markdown 1]
// Routes: opencv = a one-layer cv::dnn::Net with OpenCV 4.6's Convolution and aitw's SiLU fused the way the
// pipeline ran it before aitw's convolution; aitw = the same one-layer net with aitw's Convolution layer;
// aitw_bf16 = the same with --precision bf16 (AVX512_BF16 CPUs; fp32 elsewhere); aitw_bf16_pairs = bf16 with
// its input and output as bf16 channel pairs (the layer between two bf16 layers, pass_bf16_pairs; an fp32
// depthwise 3x3 that reads and writes pairs, conv_fp32_pairs, too; other layers that do not run bf16 time as
// aitw_bf16; not checked against OpenCV: the kernel tests compare the pairs bit for bit);
// aitw_wino / aitw_direct =
// aitw with Winograd forced on / off for the 3x3 stride-1 layers (aitw chooses per layer); aitw_wino44 = aitw
// with Winograd's tiles forced to F(4x4, 3x3) where it runs (aitw takes F(6x4, 3x3) at most heights);
// aitw_1t = aitw at one thread (the scaling figure); dnnl = oneDNN with reorders NCHW -> blocked -> NCHW
// around the convolution; dnnl_blocked = oneDNN on activations already blocked (no reorders, the ceiling);
// dnnl_tbb = dnnl called from inside a cv::parallel_for_ body, as a layer inside the pipeline's TBB flow
// graph would be.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "aitw/bench/conv_shapes.hpp"
#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/conv_params.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#ifdef AITW_BENCH_DNNL
#include "conv_bench_dnnl.hpp"
#endif

namespace {

using aitw::bench::ConvLayerCase;

// --clock cpu: the process's CPU time instead of wall time, for tuning single-threaded kernels on a machine
// shared with other jobs (time slices given to others are not counted; spinning threads are).
bool g_cpu_clock = false;

double now_ms() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

cv::dnn::Net one_layer_net(const ConvLayerCase& c, bool aitw, bool bf16 = false) {
  auto lp = aitw::kernel::convolution_layer_params(c.shape, c.weights, c.bias, aitw);
  if (bf16) lp.set(aitw::kernel::kConvPrecisionAttr, "bf16");
  cv::dnn::Net net;
  net.addLayerToPrev(lp.name, lp.type, lp);
  if (c.silu) {
    cv::dnn::LayerParams sp;
    sp.name = "silu";
    sp.type = aitw::kernel::kSiLUOpType;
    net.addLayerToPrev(sp.name, sp.type, sp);
  }
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

struct Route {
  Route(std::string n, std::function<void()> r, std::function<const float*()> o)
      : name(std::move(n)), run(std::move(r)), output(std::move(o)) {}
  std::string name;
  std::function<void()> run;
  std::function<const float*()> output;
  int calls = 1;
  bool timed = true;  // false: only the reference output
  std::vector<double> ms;
};

}  // namespace

static int run_bench(int argc, char** argv) {
  std::string model = "yolo11n", routes_arg = "opencv,aitw,dnnl,dnnl_blocked,dnnl_tbb,aitw_1t", isa;
  int height = 480, width = 640, reps = 7, threads = 2, only = -1;
  bool markdown = false;
  double min_ms = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model")
      model = v;
    else if (k == "--imgsz")
      std::sscanf(v.c_str(), "%dx%d", &height, &width);
    else if (k == "--repetitions")
      reps = std::stoi(v);
    else if (k == "--min-ms")
      min_ms = std::stod(v);
    else if (k == "--threads")
      threads = std::stoi(v);
    else if (k == "--routes")
      routes_arg = v;
    else if (k == "--isa")
      isa = v;
    else if (k == "--layer")
      only = std::stoi(v);
    else if (k == "--clock")
      g_cpu_clock = v == "cpu";
    else if (k == "--markdown")
      markdown = v == "1";
    else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  auto wants = [&](const std::string& r) {
    return ("," + routes_arg + ",").find("," + r + ",") != std::string::npos;
  };
  if (!isa.empty()) {
    for (auto level :
         {aitw::kernel::ConvIsa::Avx512, aitw::kernel::ConvIsa::Avx2, aitw::kernel::ConvIsa::Portable})
      if (isa == aitw::kernel::conv_isa_name(level)) aitw::kernel::conv_force_isa(level);
  }
  aitw::kernel::register_dnn_layers();
  cv::setNumThreads(threads);
#ifdef AITW_BENCH_DNNL
  aitw::bench::dnnl_set_threads(threads);
#endif
  const auto layers = aitw::bench::extract_conv_layers(model, height, width);
  std::cout << model << " " << height << "x" << width << ": " << layers.size() << " convolutions, " << threads
            << " threads, aitw kernels " << aitw::kernel::conv_isa_name(aitw::kernel::conv_default_isa())
            << (aitw::kernel::conv_isa_supported(aitw::kernel::ConvIsa::Avx512)
                    ? std::string(aitw::kernel::conv_avx512_full_width() ? " (512-bit FMA full width, "
                                                                         : " (512-bit FMA half width, ") +
                          "time ratio to 256-bit " +
                          std::to_string(aitw::kernel::conv_avx512_fma_width_ratio()) + ")"
                    : std::string())
            << ", median of " << reps << ", load average " << load_average() << "\n";

  struct LayerRun {
    const ConvLayerCase* c;
    cv::Mat in;
    std::vector<Route> routes;
    std::map<std::string, double> max_err;
    std::string dnnl_impl;
  };
  std::vector<LayerRun> runs;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 2.f);  // SiLU outputs: mostly positive, some negative
  std::vector<std::shared_ptr<void>> keep;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (only >= 0 && static_cast<int>(i) != only) continue;
    LayerRun r;
    r.c = &layers[i];
    const auto& c = layers[i];
    r.in.create(std::vector<int>{1, c.shape.in_channels, c.h, c.w}, CV_32F);
    for (auto* p = r.in.ptr<float>(); p != r.in.ptr<float>() + r.in.total(); ++p) *p = dist(rng);
    // The layer's own forward on caller-owned Mats, as the net calls it: a one-layer net's setInput and
    // forward(out) would add two copies of the activations to every route.
    // wino: Winograd forced on (1), off (0) for the route, or chosen as the product does (-1).
    auto add_net = [&](const std::string& name, bool ours, bool bf16 = false, int wino = -1, int rows = 0) {
      auto net = std::make_shared<cv::dnn::Net>(one_layer_net(c, ours, bf16));
      net->setInput(r.in);
      auto out = std::make_shared<std::vector<cv::Mat>>(1, net->forward().clone());  // sets the layer up
      auto layer = net->getLayer(net->getLayerId("conv"));
      if (ours != aitw::kernel::is_aitw_convolution(layer)) throw std::runtime_error("unexpected conv layer");
      keep.push_back(net);
      auto in = std::make_shared<std::vector<cv::Mat>>(1, r.in);
      r.routes.push_back({name,
                          [layer, in, out, wino, rows] {
                            std::vector<cv::Mat> internals;
                            if (wino >= 0) aitw::kernel::conv_force_winograd(wino == 1);
                            if (rows) aitw::kernel::conv_force_winograd_rows(rows);
                            layer->forward(*in, *out, internals);
                            if (wino >= 0) aitw::kernel::conv_force_winograd(std::nullopt);
                            if (rows) aitw::kernel::conv_force_winograd_rows(std::nullopt);
                          },
                          [out] { return (*out)[0].ptr<float>(); }});
    };
    add_net("opencv", false);  // the reference output for every route
    r.routes.back().timed = wants("opencv");
    if (wants("aitw")) add_net("aitw", true);
    if (wants("aitw_bf16")) add_net("aitw_bf16", true, true);  // bf16 where the CPU has AVX512_BF16
    if (wants("aitw_bf16_pairs")) {
      // A bf16 layer, or an fp32 depthwise 3x3 (conv_fp32_pairs), reads and writes pairs; any other layer
      // runs as aitw_bf16.
      const bool pairs_layer = aitw::kernel::conv_bf16_pays(c.shape) ||
                               aitw::kernel::conv_fp32_pairs(c.shape, aitw::kernel::conv_default_isa());
      if (!aitw::kernel::convolution_pairs_enabled() || !pairs_layer) {
        add_net("aitw_bf16_pairs", true, true);
      } else {
        // The layer reading and writing pairs, its SiLU in its own output loop (as the adapter marks it).
        auto lp = aitw::kernel::convolution_layer_params(c.shape, c.weights, c.bias, true);
        lp.set(aitw::kernel::kConvPrecisionAttr, "bf16");
        lp.set(aitw::kernel::kConvPairsOutAttr, 1);
        const int one = 1;
        lp.set(aitw::kernel::kConvPairsInAttr, cv::dnn::DictValue::arrayInt(&one, 1));
        if (c.silu) lp.set(aitw::kernel::kConvActivationAttr, "silu");
        auto net = std::make_shared<cv::dnn::Net>();
        net->addLayerToPrev(lp.name, lp.type, lp);
        net->setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net->setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        // The input's pairs: channel 2k's bf16 (round to nearest even) low, 2k + 1's high.
        cv::Mat pairs(r.in.dims, r.in.size.p, CV_32F, cv::Scalar(0));
        const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(c.h) * c.w;
        const auto bits = [](float x) {
          std::uint32_t b;
          std::memcpy(&b, &x, sizeof b);
          return (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
        };
        for (int q = 0; q < (c.shape.in_channels + 1) / 2; ++q)
          for (std::ptrdiff_t p = 0; p < plane; ++p) {
            const float* x = r.in.ptr<float>();
            const std::uint32_t word =
                bits(x[2 * q * plane + p]) |
                (2 * q + 1 < c.shape.in_channels ? bits(x[(2 * q + 1) * plane + p]) << 16 : 0u);
            std::memcpy(pairs.ptr<float>() + q * plane + p, &word, sizeof word);
          }
        net->setInput(pairs);
        auto out = std::make_shared<std::vector<cv::Mat>>(1, net->forward().clone());
        auto layer = net->getLayer(net->getLayerId("conv"));
        keep.push_back(net);
        auto in = std::make_shared<std::vector<cv::Mat>>(1, pairs);
        r.routes.push_back({"aitw_bf16_pairs",
                            [layer, in, out] {
                              std::vector<cv::Mat> internals;
                              layer->forward(*in, *out, internals);
                            },
                            nullptr});
      }
    }
    if (wants("aitw_wino")) add_net("aitw_wino", true, false, 1);
    if (wants("aitw_direct")) add_net("aitw_direct", true, false, 0);
    if (wants("aitw_wino44")) add_net("aitw_wino44", true, false, -1, 4);
#ifdef AITW_BENCH_DNNL
    if (wants("dnnl") || wants("dnnl_blocked") || wants("dnnl_tbb")) {
      std::shared_ptr<aitw::bench::DnnlConv> d = aitw::bench::make_dnnl_conv(c, r.in.ptr<float>());
      r.dnnl_impl = d->impl_name();
      auto out = [d] { return d->nchw_output(); };
      if (wants("dnnl")) r.routes.push_back({"dnnl", [d] { d->run_nchw(); }, out});
      if (wants("dnnl_blocked")) r.routes.push_back({"dnnl_blocked", [d] { d->run_blocked(); }, nullptr});
      if (wants("dnnl_tbb"))
        r.routes.push_back(
            {"dnnl_tbb",
             [d] { cv::parallel_for_(cv::Range(0, 1), [&](const cv::Range&) { d->run_nchw(); }); }, out});
    }
#endif
    runs.push_back(std::move(r));
  }

  // Calibrate calls per measurement, check outputs against OpenCV's.
  for (auto& r : runs) {
    const auto& ref = r.routes[0];
    ref.run();
    const cv::Mat ref_out(
        1, static_cast<int>(r.c->shape.out_channels * r.c->shape.out_h(r.c->h) * r.c->shape.out_w(r.c->w)),
        CV_32F, const_cast<float*>(ref.output()));
    const double scale = std::max(1.0, cv::norm(ref_out, cv::NORM_INF));
    for (auto& rt : r.routes) {
      rt.run();
      const double t0 = now_ms();
      rt.run();
      rt.calls = std::max(1, static_cast<int>(min_ms / std::max(1e-3, now_ms() - t0)));
      if (rt.output && &rt != &ref) {
        const cv::Mat o(ref_out.size(), CV_32F, const_cast<float*>(rt.output()));
        r.max_err[rt.name] = cv::norm(o, ref_out, cv::NORM_INF) / scale;
      }
    }
  }
  for (int rep = 0; rep < reps; ++rep)
    for (auto& r : runs)
      for (std::size_t k = 0; k < r.routes.size(); ++k) {
        auto& rt = r.routes[(k + rep) % r.routes.size()];
        if (!rt.timed) continue;
        const double t0 = now_ms();
        for (int i = 0; i < rt.calls; ++i) rt.run();
        rt.ms.push_back((now_ms() - t0) / rt.calls);
      }
  // One thread, not interleaved: re-sizing OpenCV's pool per measurement would cost more than a layer.
  std::vector<double> one_thread(runs.size(), 0);
  if (wants("aitw_1t") && wants("aitw")) {
    cv::setNumThreads(1);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto& rt = runs[i].routes[1];
      std::vector<double> ms;
      for (int rep = 0; rep < reps; ++rep) {
        const double t0 = now_ms();
        for (int k = 0; k < rt.calls; ++k) rt.run();
        ms.push_back((now_ms() - t0) / rt.calls);
      }
      one_thread[i] = median(ms);
    }
    cv::setNumThreads(threads);
  }

  // Table.
  std::vector<std::string> names;
  for (const auto& rt : runs[0].routes)
    if (rt.timed) names.push_back(rt.name);
  if (wants("aitw_1t") && wants("aitw")) names.push_back("aitw_1t");
  // --markdown: the same table as Markdown rows (bench/RESULTS.md).
  const char* sep = markdown ? " |" : "";
  if (markdown) std::printf("| ");
  std::printf("%3s%s %-8s%s %11s%s %9s%s %7s%s", "#", sep, "kind", sep, "ci->co", sep, "in", sep, "MFLOP",
              sep);
  for (const auto& n : names) std::printf(" %12s%s", (n + " ms").c_str(), sep);
  std::printf(" %9s%s %8s%s %9s%s\n", "aitw GF/s", sep, "vs OCV", sep, "max err", sep);
  if (markdown) {
    std::printf("|");
    for (std::size_t i = 0; i < names.size() + 8; ++i) std::printf("---|");
    std::printf("\n");
  }
  std::map<std::string, double> sums;
  std::map<std::string, std::map<std::string, double>> by_kind;
  std::map<std::string, int> kind_count;
  double flops = 0, worst = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    const auto& c = *r.c;
    char io[32], hw[32];
    std::snprintf(io, sizeof io, "%d->%d", c.shape.in_channels, c.shape.out_channels);
    std::snprintf(hw, sizeof hw, "%dx%d", c.h, c.w);
    if (markdown) std::printf("| ");
    std::printf("%3zu%s %-8s%s %11s%s %9s%s %7.1f%s", only >= 0 ? static_cast<std::size_t>(only) : i, sep,
                c.kind().c_str(), sep, io, sep, hw, sep, c.flops() / 1e6, sep);
    flops += c.flops();
    kind_count[c.kind()]++;
    std::map<std::string, double> med;
    for (const auto& rt : r.routes) med[rt.name] = median(rt.ms);
    if (!one_thread.empty() && wants("aitw_1t") && wants("aitw")) med["aitw_1t"] = one_thread[i];
    for (const auto& n : names) {
      std::printf(" %12.3f%s", med[n], sep);
      sums[n] += med[n];
      by_kind[c.kind()][n] += med[n];
    }
    double err = 0;
    for (const auto& [n, e] : r.max_err) err = std::max(err, e);
    worst = std::max(worst, err);
    const double aitw_ms = med.count("aitw") ? med["aitw"] : 0;
    std::printf(" %9.1f%s %7.2fx%s %9.1e%s\n", aitw_ms > 0 ? c.flops() / aitw_ms / 1e6 : 0, sep,
                aitw_ms > 0 && med.count("opencv") ? med["opencv"] / aitw_ms : 0, sep, err, sep);
  }
  std::printf("\nby kind (sum of medians, ms):\n");
  for (const auto& [k, m] : by_kind) {
    std::printf("%-8s x%-3d", k.c_str(), kind_count[k]);
    for (const auto& n : names) std::printf(" %s %.2f", n.c_str(), m.at(n));
    std::printf("\n");
  }
  std::printf("\nsum over %zu layers, %.2f GFLOP:\n", runs.size(), flops / 1e9);
  for (const auto& n : names)
    std::printf("  %-13s %8.2f ms  %6.1f GFLOP/s\n", n.c_str(), sums[n], flops / sums[n] / 1e6);
  if (sums.count("aitw_1t") && sums["aitw"] > 0)
    std::printf("  aitw 1 -> %d threads: %.2fx\n", threads, sums["aitw_1t"] / sums["aitw"]);
  if (!runs.empty() && !runs[0].dnnl_impl.empty())
    std::printf("  oneDNN implementation (layer 0): %s\n", runs[0].dnnl_impl.c_str());
  std::printf("  max |route - OpenCV| / max(1, max|OpenCV|) over all layers: %.2e\n", worst);
  std::printf("load average at the end: %s\n", load_average().c_str());
  return 0;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << "aitw_conv_bench: every convolution of a model at an input size, timed per route on the "
                   "layer's real shape and weights\n"
                   "  aitw_conv_bench [--model yolo11n] [--imgsz 480x640] [--repetitions 7] [--min-ms 4] "
                   "[--threads 2]\n"
                   "                  [--routes "
                   "opencv,aitw,aitw_bf16,aitw_bf16_pairs,aitw_wino,aitw_direct,aitw_wino44,dnnl,dnnl_"
                   "blocked,dnnl_tbb,"
                   "aitw_1t] "
                   "[--isa avx512|avx2|portable]\n"
                   "                  [--layer N] [--clock wall|cpu] [--markdown 1]\n"
                   "Models are found by name in --model-dir's folders: $AITW_MODEL_DIR or "
                   "$XDG_DATA_HOME/aitw/models. Routes: bench/conv_bench.cpp's header.\n";
      return 0;
    }
#ifdef AITW_BENCH_DNNL
  // oneDNN's GNU OpenMP threads spin after each call (OMP_WAIT_POLICY's default) and take the cores from the
  // routes interleaved with it: aitw's 87 layers measured 55.7 ms beside the dnnl_blocked route, 29.5 ms
  // with passive waits (Zen 4 VM). libgomp reads the variable when it loads, before main: set it and start
  // again, unless the caller chose a policy.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
  }
#endif
  try {
    return run_bench(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "aitw_conv_bench: " << e.what() << "\n";
    return 1;
  }
}
