#pragma once
// `aitw bench pipeline`: plays a recording in real time into the in-process pipeline and reports frames,
// drops, throughput and latency percentiles (end-to-end and per stage).
#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "aitw/pipeline/detector.hpp"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::bench {

struct BenchPipelineOptions {
  std::string recording;
  pipeline::DetectorConfig detector;  // model and thresholds
  double fps = 12;                    // offer rate; 0 = as fast as the pipeline takes frames
  double duration = 0;                // seconds; 0 = the recording once
  int nets = 1, threads = 2;
  std::string json_path;
  std::string gate;  // "p95_ms<150,fps_processed>=10,drop_pct<=5"
};

// Returns 0, 1 when a gate fails (printing which), 2 on a setup error.
int run_bench_pipeline(const BenchPipelineOptions& options, std::ostream& out);

// The report (the JSON of --json) and its table; shared with `aitw replay`.
nlohmann::json pipeline_report(const pipeline::PipelineStats& stats, double seconds, const std::string& model,
                               pipeline::InputSize input, int nets, int threads);
void print_report(const nlohmann::json& report, std::ostream& out);
// The values --gate can test, by name (p50_ms, p95_ms, p99_ms, max_ms, fps_processed, drop_pct,
// frames_processed, frame_errors, and reconnects for replay).
std::vector<std::pair<std::string, double>> gate_metrics(const nlohmann::json& report);

}  // namespace aitw::bench
