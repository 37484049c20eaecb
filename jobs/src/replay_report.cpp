// `aitw replay`, second half: from what each client saw to the report (the same fields as `aitw bench
// pipeline`, so that both read alike and take the same --gate terms), the per-client table and fairness.
#include "replay_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <map>
#include <ostream>

#include <nlohmann/json.hpp>

#include "aitw/bench/pipeline_bench.hpp"

namespace aitw::jobs {

int report_replay(std::vector<ClientTally> clients, const ReplayRun& run, const ReplayOptions& o,
                  const std::vector<bench::GateTerm>& gates, std::ostream& out) {
  const std::size_t n = clients.size();
  // Per client: its own report (the same fields as a single client's), and the pool of all of them.
  pipeline::PipelineStats pooled;
  net::ClientStats pooled_cs;
  nlohmann::json per_client = nlohmann::json::array();
  std::map<std::string, std::uint64_t> endpoints;  // results per worker endpoint, all clients
  double max_gap_ms = 0;
  std::uint64_t duplicates = 0;
  for (std::size_t c = 0; c < n; ++c) {
    ClientTally& r = clients[c];
    r.s.offered = r.offered;
    r.s.dropped = r.cs.ai_drops_latestwins_total + r.server_dropped;
    const auto rep = bench::pipeline_report(r.s, run.seconds, o.model, {0, 0}, 1, 2);
    per_client.push_back({{"client", c},
                          {"frames_offered", rep["frames_offered"]},
                          {"frames_processed", rep["frames_processed"]},
                          {"frames_dropped", rep["frames_dropped"]},
                          {"frame_errors", rep["frame_errors"]},
                          {"errors_by_cause", rep["errors_by_cause"]},
                          {"drop_pct", rep["drop_pct"]},
                          {"fps_processed", rep["fps_processed"]},
                          {"e2e_ms", rep["e2e_ms"]},
                          {"reconnects", r.cs.ai_reconnects_total},
                          {"graceful_moves", r.cs.graceful_moves_total},
                          {"frames_lost_on_disconnect", r.cs.frames_lost_on_disconnect},
                          {"max_gap_ms", std::round(r.max_gap_ms * 10) / 10},
                          {"duplicate_results", r.duplicate_results},
                          {"endpoints", r.cs.results_by_endpoint}});
    for (const auto& [ep, k] : r.cs.results_by_endpoint) endpoints[ep] += k;
    max_gap_ms = std::max(max_gap_ms, r.max_gap_ms);
    duplicates += r.duplicate_results;
    pooled.offered += r.s.offered;
    pooled.processed += r.s.processed;
    pooled.dropped += r.s.dropped;
    pooled.errors += r.s.errors;
    for (const auto& [cause, k] : r.s.errors_by_cause) pooled.errors_by_cause[cause] += k;
    pooled.e2e.merge(r.s.e2e);
    pooled.decode.merge(r.s.decode);
    pooled.preprocess.merge(r.s.preprocess);
    pooled.queue.merge(r.s.queue);
    pooled.infer.merge(r.s.infer);
    pooled.postprocess.merge(r.s.postprocess);
    pooled_cs.ai_init_ok_total += r.cs.ai_init_ok_total;
    pooled_cs.ai_reconnects_total += r.cs.ai_reconnects_total;
    pooled_cs.ai_frames_sent_total += r.cs.ai_frames_sent_total;
    pooled_cs.ai_drops_latestwins_total += r.cs.ai_drops_latestwins_total;
    pooled_cs.ai_detections_total += r.cs.ai_detections_total;
    pooled_cs.frames_lost_on_disconnect += r.cs.frames_lost_on_disconnect;
    pooled_cs.graceful_moves_total += r.cs.graceful_moves_total;
    pooled_cs.ai_frame_inflight = pooled_cs.ai_frame_inflight || r.cs.ai_frame_inflight;
    pooled_cs.ai_result_latency_ms.merge(r.cs.ai_result_latency_ms);
  }

  // The top level: the one client's figures, or every client's frames pooled (fps_processed = the total
  // rate, p95_ms = the p95 over all frames); per-client figures and the worst of them beside it.
  const auto& cs = pooled_cs;
  nlohmann::json report = bench::pipeline_report(pooled, run.seconds, o.model, run.input, 1, 2);
  report["server"] = run.server;
  report["providers"] = run.providers;
  report["reconnects"] = cs.ai_reconnects_total;
  report["client_metrics"] = {{"ai_init_ok_total", cs.ai_init_ok_total},
                              {"ai_reconnects_total", cs.ai_reconnects_total},
                              {"ai_frame_inflight", cs.ai_frame_inflight ? 1 : 0},
                              {"ai_frames_sent_total", cs.ai_frames_sent_total},
                              {"ai_drops_latestwins_total", cs.ai_drops_latestwins_total},
                              {"ai_detections_total", cs.ai_detections_total},
                              {"ai_result_latency_ms",
                               {{"p50", cs.ai_result_latency_ms.percentile_ms(50)},
                                {"p95", cs.ai_result_latency_ms.percentile_ms(95)},
                                {"count", cs.ai_result_latency_ms.count()}}}};
  report["frames_lost_on_disconnect"] = cs.frames_lost_on_disconnect;
  report["graceful_moves"] = cs.graceful_moves_total;
  report["endpoints"] = endpoints;
  report["max_gap_ms"] = std::round(max_gap_ms * 10) / 10;
  report["duplicate_results"] = duplicates;
  report.erase("threads");

  // Across clients (also for one client, where they equal the top level): gateable, and in the JSON when N
  // > 1.
  std::uint64_t min_processed = UINT64_MAX, max_processed = 0;
  double fps_min = 1e300, fps_max = 0, p50_max = 0, p95_max = 0, p99_max = 0, max_max = 0, drop_max = 0;
  std::size_t worst_p95 = 0;
  for (std::size_t c = 0; c < n; ++c) {
    const auto& e = per_client[c];
    min_processed = std::min(min_processed, e["frames_processed"].get<std::uint64_t>());
    max_processed = std::max(max_processed, e["frames_processed"].get<std::uint64_t>());
    fps_min = std::min(fps_min, e["fps_processed"].get<double>());
    fps_max = std::max(fps_max, e["fps_processed"].get<double>());
    p50_max = std::max(p50_max, e["e2e_ms"]["p50"].get<double>());
    if (e["e2e_ms"]["p95"].get<double>() > p95_max) worst_p95 = c;
    p95_max = std::max(p95_max, e["e2e_ms"]["p95"].get<double>());
    p99_max = std::max(p99_max, e["e2e_ms"]["p99"].get<double>());
    max_max = std::max(max_max, e["e2e_ms"]["max"].get<double>());
    drop_max = std::max(drop_max, e["drop_pct"].get<double>());
  }
  // Same window for every client: the ratio of frames processed is the ratio of rates. 0 when none got any.
  const double fairness =
      max_processed
          ? std::round(1000.0 * static_cast<double>(min_processed) / static_cast<double>(max_processed)) /
                1000
          : 0.0;
  const std::vector<std::pair<std::string, double>> across{
      {"clients", static_cast<double>(n)},
      {"fairness", fairness},
      {"fps_processed_total", report["fps_processed"].get<double>()},
      {"fps_processed_min", fps_min},
      {"fps_processed_max", fps_max},
      {"p50_ms_max", p50_max},
      {"p95_ms_max", p95_max},
      {"p99_ms_max", p99_max},
      {"max_ms_max", max_max},
      {"drop_pct_max", drop_max},
      {"max_gap_ms", max_gap_ms},
      {"duplicate_results", static_cast<double>(duplicates)}};
  if (n > 1) {
    for (const auto& [k, v] : across) report[k] = v;
    report["clients"] = per_client;
    report["fps_offered_per_client"] = o.fps;
  }

  if (n > 1)
    out << "clients   " << n << " concurrent sessions on one worker, " << o.fps
        << " fps offered each; the figures below pool every client's frames\n";
  bench::print_report(report, out);
  if (n > 1) {
    out << std::fixed;
    out << std::right << std::setw(6) << "client" << std::setw(9) << "offered" << std::setw(11) << "processed"
        << std::setw(9) << "dropped" << std::setw(8) << "errors" << std::setw(9) << "fps" << std::setw(9)
        << "p50 ms" << std::setw(9) << "p95 ms" << std::setw(9) << "max ms"
        << "\n";
    for (const auto& e : per_client)
      out << std::setw(6) << e["client"].get<int>() << std::setw(9)
          << e["frames_offered"].get<std::uint64_t>() << std::setw(11)
          << e["frames_processed"].get<std::uint64_t>() << std::setw(9)
          << e["frames_dropped"].get<std::uint64_t>() << std::setw(8)
          << e["frame_errors"].get<std::uint64_t>() << std::setprecision(2) << std::setw(9)
          << e["fps_processed"].get<double>() << std::setprecision(1) << std::setw(9)
          << e["e2e_ms"]["p50"].get<double>() << std::setw(9) << e["e2e_ms"]["p95"].get<double>()
          << std::setw(9) << e["e2e_ms"]["max"].get<double>() << "\n";
    out << std::setw(6) << "total" << std::setw(9) << report["frames_offered"].get<std::uint64_t>()
        << std::setw(11) << report["frames_processed"].get<std::uint64_t>() << std::setw(9)
        << report["frames_dropped"].get<std::uint64_t>() << std::setw(8)
        << report["frame_errors"].get<std::uint64_t>() << std::setprecision(2) << std::setw(9)
        << report["fps_processed"].get<double>() << "\n";
    out << "fairness  " << std::setprecision(3) << fairness
        << " (min / max client fps_processed: " << std::setprecision(2) << fps_min << " / " << fps_max
        << "); worst client p95 " << std::setprecision(1) << p95_max << " ms (client " << worst_p95 << ")\n";
  }
  out << "client    reconnects " << cs.ai_reconnects_total << " (" << cs.graceful_moves_total
      << " graceful), lost on disconnect " << cs.frames_lost_on_disconnect << ", longest gap "
      << std::llround(max_gap_ms) << " ms, duplicates " << duplicates << ", server "
      << report["server"].get<std::string>() << "\n";
  if (!run.providers.empty()) {
    out << "worker   ";
    for (std::size_t i = 0; i < run.providers.size(); ++i) out << (i ? "; " : " ") << run.providers[i];
    out << "\n";
  }
  if (endpoints.size() > 1) {
    out << "endpoints";
    for (const auto& [ep, k] : endpoints) out << " " << ep << " " << k;
    out << " (results)\n";
  }
  if (!o.json_path.empty() && !bench::write_json_report(o.json_path, report)) return 2;
  auto metrics = bench::gate_metrics(report);
  metrics.insert(metrics.end(), across.begin(), across.end());
  return bench::check_gates(gates, metrics, /*prefix_match=*/false, out) ? 1 : 0;
}

}  // namespace aitw::jobs
