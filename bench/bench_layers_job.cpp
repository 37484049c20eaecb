#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "aitw/base/log.hpp"
#include "aitw/bench/gates.hpp"
#include "aitw/bench/kernel_cases.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/dnn_layers.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/model/onnx_model.hpp"

namespace aitw::bench {
namespace {

double round_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.empty() ? 0.0 : v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

}  // namespace

int run_bench_layers(const BenchLayersOptions& options, std::ostream& out) {
  try {
    if (options.threads > 0) cv::setNumThreads(options.threads);
    const auto model = model::OnnxModel::load(model::resolve_model_path(options.model));
    model::AdaptOptions adapt;
    adapt.custom_layers = !options.opencv_layers;
    adapt.precision = options.precision;
    const auto graph = model.adapt({options.height, options.width}, adapt);
    cv::dnn::Net net = model::load_net(graph, model.label());
    // As Detector::infer runs it: headers of the net's own output buffers and of its input buffer
    // (OpenCV's "_input" layer), which holds the image; setInput of its own buffer copies nothing.
    auto names = model::forward_output_names(net, graph);
    names.push_back("_input");
    net.setInput(cv::Mat(std::vector<int>{1, 3, options.height, options.width}, CV_32F, cv::Scalar(0.5)));
    std::vector<std::vector<cv::Mat>> io;
    net.forward(io, names);
    cv::Mat input = io.back().front();
    for (int i = 0; i < 3; ++i) {  // warm-up: first runs allocate
      net.setInput(input);
      net.forward(io, names);
      input = io.back().front();
    }
    const double tick_ms = 1000.0 / cv::getTickFrequency();
    std::vector<double> per_layer, timings, wall_ms;
    double total = 0;
    const int reps = std::max(1, options.repetitions);
    int forwards = 0;
    // One round: `reps` forwards; per-layer and total sums (divided by the count below); the round's median.
    const auto round = [&] {
      std::vector<double> ms;
      for (int r = 0; r < reps; ++r) {
        // The image written into the input buffer before each forward, untimed, as the pipeline's
        // preprocessing does (the first layer then reads it from cache, as it read setInput's copy before).
        input.setTo(cv::Scalar(0.5));
        const auto t0 = std::chrono::steady_clock::now();
        net.setInput(input);
        net.forward(io, names);
        input = io.back().front();
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        total += net.getPerfProfile(timings) * tick_ms;
        per_layer.resize(timings.size(), 0.0);
        for (std::size_t i = 0; i < timings.size(); ++i) per_layer[i] += timings[i] * tick_ms;
      }
      forwards += reps;
      wall_ms.insert(wall_ms.end(), ms.begin(), ms.end());
      return round_median(ms);
    };
    if (options.stdin_rounds) {
      out << nlohmann::json{{"ready", true}}.dump() << std::endl;
      std::string line;
      for (int k = 1; std::getline(std::cin, line); ++k)
        out << nlohmann::json{{"round", k}, {"forward_ms_median", round()}}.dump() << std::endl;
      if (forwards == 0) round();  // no request: one round, so that the report below has figures
    } else {
      round();
    }
    total /= forwards;
    for (double& ms : per_layer) ms /= forwards;
    std::map<std::string, std::pair<double, int>> by_type;
    std::vector<std::pair<double, std::string>> slowest;
    for (std::size_t i = 0; i < per_layer.size(); ++i) {
      const auto layer = net.getLayer(static_cast<int>(i) + 1);  // id 0 is the input layer
      by_type[layer->type].first += per_layer[i];
      by_type[layer->type].second += 1;
      slowest.emplace_back(per_layer[i], layer->type + "  " + layer->name);
    }
    // The activations' layout (kernel::ConvLayout): which convolutions run bf16, which tensors stay bf16
    // channel pairs between them, and how many fp32 inputs the bf16 ones convert (the reorders, inside them).
    struct {
      int bf16 = 0, fp32 = 0, pair_outputs = 0, pair_inputs = 0, converted = 0, pool_pair_outputs = 0,
          residual_pairs = 0;
    } layout;
    std::vector<std::optional<kernel::ConvLayout>> conv_layouts(per_layer.size());
    std::vector<int> pool_pairs(per_layer.size(), 0);  // SPPF's max pool chain on pairs: its outputs
    for (std::size_t i = 0; i < per_layer.size(); ++i) {
      const auto layer = net.getLayer(static_cast<int>(i) + 1);
      layout.pool_pair_outputs += pool_pairs[i] = kernel::max_pool_chain_pair_outputs(layer);
      const auto& l = conv_layouts[i] = kernel::convolution_layout(layer);
      if (!l) continue;
      ++(l->precision == kernel::ConvPrecision::Bf16 ? layout.bf16 : layout.fp32);
      layout.pair_outputs += l->pairs_out;
      layout.pair_inputs += l->pair_inputs;
      layout.converted += l->converted_inputs;
      layout.residual_pairs += l->residual_pairs;
    }
    const double wall_median = round_median(wall_ms);
    // stdin_rounds: `out` carries the JSON lines only; the figures go to --json.
    std::ostringstream discard;
    std::ostream& text = options.stdin_rounds ? discard : out;
    text << graph.summary() << "\n";
    text << "forward " << std::fixed << std::setprecision(2) << total << " ms in layers (mean of " << forwards
         << "), wall " << wall_median << " ms (median), " << options.height << "x" << options.width << ", "
         << cv::getNumThreads() << " threads, " << (options.opencv_layers ? "OpenCV layers" : "aitw layers")
         << "\n";
    if (layout.bf16 == 0)
      text << "layout: NCHW throughout, no reorders (" << layout.fp32 << " aitw convolutions, fp32)\n\n";
    else
      text << "layout: " << layout.bf16 << " bf16 and " << layout.fp32 << " fp32 aitw convolutions; "
           << layout.pair_outputs << " outputs written as bf16 channel pairs"
           << (layout.pool_pair_outputs > 0
                   ? " (and " + std::to_string(layout.pool_pair_outputs) + " by max pools on pairs)"
                   : std::string())
           << ", " << layout.pair_inputs << " inputs and " << layout.residual_pairs
           << " fused Adds' skips read as pairs; reorders: " << layout.converted
           << " fp32 inputs converted to pairs inside the bf16 convolutions that read them\n\n";
    text << std::left << std::setw(18) << "layer type" << std::right << std::setw(8) << "count"
         << std::setw(12) << "ms" << std::setw(8) << "%"
         << "\n";
    std::vector<std::pair<double, std::string>> types;
    for (const auto& [t, v] : by_type) types.emplace_back(v.first, t);
    std::sort(types.rbegin(), types.rend());
    for (const auto& [ms, t] : types)
      text << std::left << std::setw(18) << t << std::right << std::setw(8) << by_type[t].second
           << std::setw(12) << std::setprecision(2) << ms << std::setw(7) << std::setprecision(1)
           << 100 * ms / total << "%\n";
    if (!options.json_path.empty()) {
      nlohmann::json j{{"model", model.label()},
                       {"imgsz", std::to_string(options.height) + "x" + std::to_string(options.width)},
                       {"threads", cv::getNumThreads()},
                       {"layers", options.opencv_layers ? "opencv" : "aitw"},
                       {"precision", kernel::conv_precision_name(options.precision)},
                       {"repetitions", reps},
                       {"forwards", forwards},
                       {"forward_ms_median", wall_median},
                       {"layers_ms_mean", total}};
      for (const auto& [ms, t] : types) j["by_type"][t] = {{"count", by_type[t].second}, {"ms", ms}};
      j["layout"] = {
          {"bf16_convolutions", layout.bf16},       {"fp32_convolutions", layout.fp32},
          {"pair_outputs", layout.pair_outputs},    {"pair_inputs", layout.pair_inputs},
          {"converted_inputs", layout.converted},   {"pool_pair_outputs", layout.pool_pair_outputs},
          {"residual_pairs", layout.residual_pairs}};
      // Every layer in the net's order: its name, type and mean ms (what one change moved, layer by layer).
      j["per_layer"] = nlohmann::json::array();
      for (std::size_t i = 0; i < per_layer.size(); ++i) {
        const auto layer = net.getLayer(static_cast<int>(i) + 1);
        nlohmann::json e{{"name", layer->name}, {"type", layer->type}, {"ms", per_layer[i]}};
        if (const auto& l = conv_layouts[i]) {
          e["precision"] = kernel::conv_precision_name(l->precision);
          e["pair_inputs"] = l->pair_inputs;
          e["converted_inputs"] = l->converted_inputs;
          e["pairs_out"] = l->pairs_out;
          e["residual_pairs"] = l->residual_pairs;
        }
        if (pool_pairs[i] > 0) e["pair_outputs"] = pool_pairs[i];  // a max pool chain on pairs
        j["per_layer"].push_back(std::move(e));
      }
      if (!write_json_report(options.json_path, j)) return 2;
    }
    std::sort(slowest.rbegin(), slowest.rend());
    text << "\nslowest layers:\n";
    for (std::size_t i = 0; i < std::min<std::size_t>(8, slowest.size()); ++i)
      text << std::setw(8) << std::setprecision(2) << slowest[i].first << " ms  " << slowest[i].second
           << "\n";
    return 0;
  } catch (const std::exception& e) {
    aitw::log_error(e.what());
    return 2;
  }
}

}  // namespace aitw::bench
