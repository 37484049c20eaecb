// aitw bench kernels|layers|pipeline: the benchmarks of aitw_bench_cases, one function each.
#include <cstdlib>
#include <iostream>
#include <memory>

#include "aitw/base/defaults.hpp"
#include "aitw/bench/kernel_cases.hpp"
#include "aitw/bench/pipeline_bench.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "commands.hpp"

namespace aitw::tools {
namespace {

struct BenchFlags {
  bench::BenchKernelsOptions kernels;
  bench::BenchLayersOptions layers;
  bench::BenchPipelineOptions pipeline;
};

CLI::App* add_kernels(CLI::App& parent, bench::BenchKernelsOptions& bk) {
  if (const char* env = std::getenv("AITW_SHARED_DIR"); env && *env) bk.shared_dir = env;
  auto* kernels = parent.add_subcommand(
      "kernels",
      "Time each kernel against its OpenCV baseline in the same process (preprocess, decode+NMS) and print\n"
      "a table of medians; exit 1 if a --gate fails.");
  kernels->add_option("--repetitions", bk.repetitions, "repetitions; the table shows medians")
      ->capture_default_str()
      ->check(at_least(1));
  kernels->add_option("--json", bk.json_path,
                      "also write {\"kernels\": [{name, ours_ms, baseline_ms, speedup}]} to FILE");
  kernels->add_option("--gate", bk.gate,
                      "minimum speedups by kernel name prefix, e.g. \"preprocess>=5,decode_nms>=5\"");
  kernels
      ->add_option("--shared", bk.shared_dir, "folder with models/ and datasets/ (default $AITW_SHARED_DIR)")
      ->capture_default_str()
      ->check(CLI::ExistingDirectory);
  return kernels;
}

CLI::App* add_layers(CLI::App& parent, bench::BenchLayersOptions& bl, GlobalFlags& global) {
  auto* layers = parent.add_subcommand(
      "layers", "Per-layer forward profile of the rewritten model (OpenCV's getPerfProfile), by layer type");
  layers->add_option("--model", bl.model, kModelHelp)->capture_default_str();
  add_model_dir_flag(*layers, global);
  layers
      ->add_option_function<std::string>(
          "--imgsz",
          [&bl](const std::string& s) {
            const auto hw = jobs::parse_dimensions(s, "HxW");
            bl.height = hw->first;
            bl.width = hw->second;
          },
          "network input HxW (multiples of 32)")
      ->default_str("480x640")
      ->check(dimensions("HxW"));
  layers->add_flag("--opencv-layers", bl.opencv_layers, "profile with OpenCV's own layers instead of aitw's");
  add_precision_flag(*layers, bl.precision);
  layers->add_option("--repetitions", bl.repetitions, "forward passes averaged")
      ->capture_default_str()
      ->check(at_least(1));
  layers->add_option("--threads", bl.threads, "OpenCV threads for the forward (default: OpenCV's)")
      ->check(at_least(1));
  layers->add_option(
      "--json", bl.json_path,
      "also write {model, imgsz, threads, precision, forward_ms_median, layers_ms_mean, by_type,\n"
      "layout, per_layer} to FILE (layout: the convolutions' bf16 / fp32 counts, the tensors kept as\n"
      "bf16 channel pairs and the fp32 inputs converted to pairs, the reorders)");
  layers->add_flag(
      "--stdin-rounds", bl.stdin_rounds,
      "after the warm-up print {\"ready\": true}; then per line read from stdin run --repetitions\n"
      "forwards and print {\"round\", \"forward_ms_median\"} as a JSON line (no text report;\n"
      "--json covers every round). bench/peer/run.sh alternates rounds with ONNX Runtime's this way");
  return layers;
}

CLI::App* add_pipeline(CLI::App& parent, bench::BenchPipelineOptions& bp, GlobalFlags& global) {
  bp.detector.model_path = kDefaultModel;
  auto* bpipe = parent.add_subcommand(
      "pipeline",
      "Play a recording in real time into the pipeline (in-process) and report drops, throughput and\n"
      "latency percentiles; exit 1 if a --gate fails");
  bpipe->add_option("--recording", bp.recording, "a .aitwrec file (see `aitw record`)")
      ->required()
      ->check(CLI::ExistingFile);
  bpipe->add_option("--model", bp.detector.model_path, kModelHelp)->capture_default_str();
  add_model_dir_flag(*bpipe, global);
  bpipe
      ->add_option_function<std::string>(
          "--imgsz", [&bp](const std::string& s) { jobs::apply_imgsz(s, bp.detector); },
          "network input: N (longer side, rectangular) or HxW")
      ->default_str("640")
      ->check(kImgsz);
  bpipe->add_option("--fps", bp.fps, "offer rate; 0 = as fast as the pipeline takes frames (saturated)")
      ->capture_default_str()
      ->check(at_least(0));
  bpipe->add_option("--duration", bp.duration, "seconds to run (0 = the recording once)")
      ->capture_default_str()
      ->check(at_least(0));
  bpipe->add_option("--nets", bp.nets, "network instances run concurrently")->capture_default_str();
  bpipe->add_option("--threads", bp.threads, "OpenCV threads per network")->capture_default_str();
  bpipe->add_option("--conf", bp.detector.conf, "confidence threshold")->capture_default_str();
  add_precision_flag(*bpipe, bp.detector.adapt.precision);
  bpipe->add_option("--json", bp.json_path, "also write the report as JSON to FILE");
  bpipe->add_option("--gate", bp.gate, "conditions, e.g. \"p95_ms<150,fps_processed>=10,drop_pct<=5\"");
  return bpipe;
}

}  // namespace

Command add_bench(CLI::App& app, GlobalFlags& global) {
  auto flags = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand("bench", "Benchmarks: compare aitw's kernels with the OpenCV baseline");
  cmd->require_subcommand(1);
  auto* kernels = add_kernels(*cmd, flags->kernels);
  auto* layers = add_layers(*cmd, flags->layers, global);
  auto* pipe = add_pipeline(*cmd, flags->pipeline, global);
  return {cmd, [=] {
            if (kernels->parsed()) return bench::run_bench_kernels(flags->kernels, std::cout);
            if (layers->parsed()) return bench::run_bench_layers(flags->layers, std::cout);
            if (pipe->parsed()) return bench::run_bench_pipeline(flags->pipeline, std::cout);
            return 2;  // unreachable: require_subcommand(1)
          }};
}

}  // namespace aitw::tools
