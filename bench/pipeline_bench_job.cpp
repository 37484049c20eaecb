#include "aitw/bench/pipeline_bench.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "aitw/base/log.hpp"
#include "aitw/bench/gates.hpp"
#include "aitw/datasets/recording.hpp"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::bench {
namespace {

using Clock = std::chrono::steady_clock;

pipeline::PixelFormat to_format(v1::PixelFormat f) {
  switch (f) {
    case v1::RGB8:
      return pipeline::PixelFormat::RGB8;
    case v1::BGR8:
      return pipeline::PixelFormat::BGR8;
    default:
      return pipeline::PixelFormat::JPEG;
  }
}

nlohmann::json percentiles(const pipeline::LatencyHistogram& h) {
  auto r = [](double v) { return std::round(v * 100) / 100; };
  return {{"p50", r(h.percentile_ms(50))},
          {"p95", r(h.percentile_ms(95))},
          {"p99", r(h.percentile_ms(99))},
          {"max", r(h.max_ms())}};
}

}  // namespace

nlohmann::json pipeline_report(const pipeline::PipelineStats& s, double seconds, const std::string& model,
                               pipeline::InputSize input, int nets, int threads) {
  const double drop_pct =
      s.offered ? 100.0 * static_cast<double>(s.dropped) / static_cast<double>(s.offered) : 0;
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [cause, n] : s.errors_by_cause) errors[cause] = n;
  return {{"frames_offered", s.offered},
          {"frames_processed", s.processed},
          {"frames_dropped", s.dropped},
          {"frame_errors", s.errors},
          {"errors_by_cause", errors},
          {"drop_pct", std::round(drop_pct * 100) / 100},
          {"fps_processed", seconds > 0 ? std::round(s.processed / seconds * 100) / 100 : 0.0},
          {"duration_s", std::round(seconds * 100) / 100},
          {"e2e_ms", percentiles(s.e2e)},
          {"stages_ms",
           {{"decode", percentiles(s.decode)},
            {"preprocess", percentiles(s.preprocess)},
            {"queue", percentiles(s.queue)},
            {"infer", percentiles(s.infer)},
            {"postprocess", percentiles(s.postprocess)}}},
          {"model", model},
          {"input", {input.height, input.width}},
          {"threads", {{"nets", nets}, {"threads_per_net", threads}}}};
}

std::vector<std::pair<std::string, double>> gate_metrics(const nlohmann::json& report) {
  std::vector<std::pair<std::string, double>> m{{"p50_ms", report["e2e_ms"]["p50"]},
                                                {"p95_ms", report["e2e_ms"]["p95"]},
                                                {"p99_ms", report["e2e_ms"]["p99"]},
                                                {"max_ms", report["e2e_ms"]["max"]},
                                                {"fps_processed", report["fps_processed"]},
                                                {"drop_pct", report["drop_pct"]},
                                                {"frames_processed", report["frames_processed"]},
                                                {"frame_errors", report["frame_errors"]}};
  if (report.contains("reconnects")) m.emplace_back("reconnects", report["reconnects"]);
  return m;
}

void print_report(const nlohmann::json& j, std::ostream& out) {
  auto num = [](const nlohmann::json& v) { return v.get<double>(); };
  out << std::fixed << std::setprecision(1);
  out << "frames    offered " << j["frames_offered"] << ", processed " << j["frames_processed"]
      << ", dropped " << j["frames_dropped"] << " (" << num(j["drop_pct"]) << " %), errors "
      << j["frame_errors"] << "\n";
  out << "rate      " << std::setprecision(2) << num(j["fps_processed"]) << " fps processed over "
      << num(j["duration_s"]) << " s; model " << j["model"].get<std::string>() << ", input " << j["input"][0]
      << "x" << j["input"][1];
  if (j.contains("threads"))
    out << ", " << j["threads"]["nets"] << " net(s) x " << j["threads"]["threads_per_net"] << " thread(s)";
  out << "\n";
  out << std::left << std::setw(14) << "latency ms" << std::right << std::setw(9) << "p50" << std::setw(9)
      << "p95" << std::setw(9) << "p99" << std::setw(9) << "max"
      << "\n";
  auto row = [&](const std::string& name, const nlohmann::json& p) {
    out << std::left << std::setw(14) << name << std::right << std::setprecision(2) << std::setw(9)
        << num(p["p50"]) << std::setw(9) << num(p["p95"]) << std::setw(9) << num(p["p99"]) << std::setw(9)
        << num(p["max"]) << "\n";
  };
  row("end-to-end", j["e2e_ms"]);
  for (const char* s : {"decode", "preprocess", "queue", "infer", "postprocess"})
    row("  " + std::string(s), j["stages_ms"][s]);
}

int run_bench_pipeline(const BenchPipelineOptions& o, std::ostream& out) {
  std::vector<GateTerm> gates;
  if (!parse_gates_or_log(o.gate, gates)) return 2;
  if (o.fps < 0 || o.duration < 0) {
    aitw::log_error("--fps and --duration must not be negative");
    return 2;
  }
  // The recording, in memory: playback must not wait on the disk.
  std::vector<pipeline::FrameIn> frames;
  v1::RecordingHeader header;
  try {
    datasets::RecordingReader reader(o.recording);
    header = reader.header();
    while (auto f = reader.next())
      frames.push_back({f->frame_id(), 0, to_format(f->format()), static_cast<int>(f->width()),
                        static_cast<int>(f->height()), std::move(*f->mutable_pixels())});
  } catch (const datasets::RecordingError& e) {
    aitw::log_error(e.what());
    return 2;
  }
  if (frames.empty()) {
    aitw::log_error("recording '" + o.recording + "' has no frames");
    return 2;
  }
  if (header.width() == 0 || header.height() == 0 || header.width() > 16384 || header.height() > 16384 ||
      !(header.fps() > 0 && header.fps() <= 1000)) {
    aitw::log_error("recording '" + o.recording + "': invalid header (frame size " +
                    std::to_string(header.width()) + "x" + std::to_string(header.height()) + ", fps " +
                    std::to_string(header.fps()) + ")");
    return 2;
  }
  const double duration =
      o.duration > 0 ? o.duration : static_cast<double>(frames.size()) / (o.fps > 0 ? o.fps : header.fps());

  pipeline::PipelineConfig cfg;
  cfg.detector = o.detector;
  cfg.nets = o.nets;
  cfg.threads_per_net = o.threads;
  cfg.warm_width = static_cast<int>(header.width());
  cfg.warm_height = static_cast<int>(header.height());
  std::unique_ptr<pipeline::Pipeline> p;
  pipeline::InputSize input;
  try {
    p = std::make_unique<pipeline::Pipeline>(cfg, nullptr);
    input = p->detector().input_size_for(cfg.warm_width, cfg.warm_height);
  } catch (const std::exception& e) {
    aitw::log_error(e.what());
    return 2;
  }
  aitw::log_info("bench pipeline: " + std::to_string(frames.size()) + " frames from '" + o.recording + "', " +
                 (o.fps > 0 ? std::to_string(o.fps) + " fps" : std::string("saturated (--fps 0)")) + " for " +
                 std::to_string(duration) + " s");

  const bool tty = isatty(STDERR_FILENO);
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  auto next_progress = t0 + std::chrono::seconds(1);
  std::uint64_t i = 0;
  for (;; ++i) {
    Clock::time_point due = t0;
    if (o.fps > 0) {
      due = t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(i) / o.fps));
      if (due >= end) break;
      std::this_thread::sleep_until(due);
    } else {
      while (!p->has_capacity() && Clock::now() < end)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (Clock::now() >= end) break;
    }
    pipeline::FrameIn f = frames[i % frames.size()];
    f.frame_id = i;
    f.capture_ns = 0;  // stamped at submit: end-to-end = offer -> result
    p->submit(std::move(f));
    if (Clock::now() >= next_progress && aitw::log_level() <= aitw::LogLevel::Info) {
      next_progress += std::chrono::seconds(tty ? 1 : 5);
      const auto s = p->stats();
      std::fprintf(stderr, "%s[%5.1f/%.0f s] offered %llu  processed %llu  dropped %llu  p95 %.1f ms%s",
                   tty ? "\r" : "", std::chrono::duration<double>(Clock::now() - t0).count(), duration,
                   static_cast<unsigned long long>(s.offered), static_cast<unsigned long long>(s.processed),
                   static_cast<unsigned long long>(s.dropped), s.e2e.percentile_ms(95), tty ? "   " : "\n");
    }
  }
  p->wait_idle();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (tty && aitw::log_level() <= aitw::LogLevel::Info) std::fprintf(stderr, "\n");

  const auto stats = p->stats();
  const nlohmann::json report =
      pipeline_report(stats, seconds, p->detector().model().label(), input, cfg.nets, cfg.threads_per_net);
  print_report(report, out);
  if (!o.json_path.empty() && !write_json_report(o.json_path, report)) return 2;
  return check_gates(gates, gate_metrics(report), /*prefix_match=*/false, out) ? 1 : 0;
}

}  // namespace aitw::bench
