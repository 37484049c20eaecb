#include "aitw/bench/replay.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "aitw/bench/gates.hpp"
#include "aitw/bench/pipeline_bench.hpp"
#include "aitw/datasets/record.hpp"
#include "aitw/datasets/recording.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "aitw/base/host_port.hpp"
#include "aitw/base/log.hpp"

namespace aitw::bench {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

bool is_recording(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f.gcount() == 8 && std::memcmp(magic, datasets::kRecordingMagic, 8) == 0;
}

// One client of the run: its own connection and Init, and what it saw.
struct ClientRun {
  std::unique_ptr<net::Client> client;
  std::mutex m;  // guards s, server_dropped, last_error (written by the client's callbacks)
  pipeline::PipelineStats s;  // filled from the client's side
  std::uint64_t server_dropped = 0;
  std::string last_error;
  std::uint64_t offered = 0;  // written by its offering thread only, read after it joined
  net::ClientStats cs;        // at the end
};

}  // namespace

int run_replay(const ReplayOptions& o, std::ostream& out) {
  std::vector<GateTerm> gates;
  if (!parse_gates_or_log(o.gate, gates)) return 2;
  // The source, as Frame messages in memory. Directories and videos are recorded first (640x480).
  std::string recording = o.source;
  fs::path temp;
  if (!is_recording(o.source)) {
    temp = fs::temp_directory_path() / ("aitw_replay_" + std::to_string(getpid()) + ".aitwrec");
    datasets::RecordOptions ro;
    ro.from = o.source;
    ro.fps = o.fps > 0 ? o.fps : 12;
    ro.out = temp.string();
    std::ostringstream log;
    if (datasets::run_record(ro, log) != 0) {
      aitw::log_error("replay: " + log.str());
      return 2;
    }
    recording = temp.string();
  }
  std::vector<v1::Frame> frames;
  v1::RecordingHeader header;
  try {
    datasets::RecordingReader r(recording);
    header = r.header();
    while (auto f = r.next()) frames.push_back(std::move(*f));
  } catch (const datasets::RecordingError& e) {
    aitw::log_error(e.what());
    return 2;
  }
  if (!temp.empty()) fs::remove(temp);
  if (frames.empty() || header.width() == 0 || header.height() == 0) {
    aitw::log_error("replay: '" + o.source + "' has no usable frames");
    return 2;
  }

  if (o.clients < 1) {
    aitw::log_error("--clients must be at least 1");
    return 2;
  }
  const auto n = static_cast<std::size_t>(o.clients);

  // The worker: remote, or in-process on loopback.
  std::unique_ptr<net::Server> local;
  net::ClientConfig cc;
  if (o.server.empty()) {
    net::ServerConfig sc;
    sc.port = 0;
    // The in-process worker serves this user's own --model: a path is allowed in its own folder.
    if (model::is_model_path(o.model))
      sc.model_dirs = {std::filesystem::absolute(o.model).parent_path().string()};
    sc.auth_token = o.auth_token;
    sc.max_sessions = std::max(sc.max_sessions, o.clients);
    local = std::make_unique<net::Server>(sc);
    try {
      local->start();
    } catch (const std::exception& e) {
      aitw::log_error(e.what());
      return 2;
    }
    cc.port = local->port();
  } else {
    std::string error;
    const auto at = parse_host_port(o.server, &error);
    if (!at) {
      log_error("--server '" + o.server + "': " + error);
      return 2;
    }
    cc.host = at->host;
    cc.port = at->port;
  }
  cc.init.set_model(o.model);
  cc.init.set_auth_token(o.auth_token);
  cc.init.set_width(header.width());
  cc.init.set_height(header.height());
  cc.init.set_format(header.format());
  cc.init.set_client_id("aitw-replay");
  if (o.conf > 0) cc.init.mutable_thresholds()->set_conf(o.conf);

  std::ofstream detections;
  if (!o.detections_path.empty()) {
    detections.open(o.detections_path);
    if (!detections) {
      aitw::log_error("--detections: cannot write " + o.detections_path);
      return 2;
    }
  }
  std::mutex out_mutex;  // guards `detections` and `names`, shared by every client's callbacks
  std::vector<std::string> names;
  std::vector<std::unique_ptr<ClientRun>> runs;
  for (std::size_t c = 0; c < n; ++c) {
    auto run = std::make_unique<ClientRun>();
    ClientRun& r = *run;
    net::ClientConfig ccc = cc;
    if (n > 1) ccc.init.set_client_id("aitw-replay-" + std::to_string(c));
    r.client = std::make_unique<net::Client>(
        ccc,
        [&r, &out_mutex, &names, &detections, n, c](const v1::Result& res, double latency) {
          {
            std::lock_guard<std::mutex> lock(r.m);
            ++r.s.processed;
            r.s.e2e.record(latency);
            r.s.decode.record(res.times().decode_ms());
            r.s.preprocess.record(res.times().preprocess_ms());
            r.s.queue.record(res.times().queue_ms());
            r.s.infer.record(res.times().infer_ms());
            r.s.postprocess.record(res.times().postprocess_ms());
          }
          std::lock_guard<std::mutex> lock(out_mutex);
          if (detections) {
            nlohmann::json dets = nlohmann::json::array();
            for (const auto& d : res.detections())
              dets.push_back({{"class_id", d.class_id()},
                              {"class_name", d.class_id() < names.size() ? names[d.class_id()] : ""},
                              {"score", d.score()},
                              {"box", {d.x1(), d.y1(), d.x2(), d.y2()}}});
            nlohmann::json line{{"frame_id", res.frame_id()},
                                {"ts_mono_ns", res.ts_mono_ns()},
                                {"latency_ms", latency},
                                {"detections", dets}};
            if (n > 1) line["client"] = c;
            detections << line.dump() << "\n";
          }
        },
        [&r](const v1::Error& e) {
          std::lock_guard<std::mutex> lock(r.m);
          if (e.code() == net::kErrDropped) {
            ++r.server_dropped;
            return;
          }
          ++r.s.errors;
          ++r.s.errors_by_cause["code_" + std::to_string(e.code())];
          r.last_error = e.message();
        });
    runs.push_back(std::move(run));
  }
  // Every client connects and sends Init at once; the offering starts when all are initialized.
  for (auto& r : runs) r->client->start();
  for (std::size_t c = 0; c < n; ++c) {
    ClientRun& r = *runs[c];
    if (!r.client->wait_initialized(std::chrono::seconds(30))) {
      std::lock_guard<std::mutex> lock(r.m);
      aitw::log_error("replay: " + (n > 1 ? "client " + std::to_string(c) + " of " + std::to_string(n) + ": " : "") +
                          "no InitOk from " + cc.host + ":" + std::to_string(cc.port) +
                          (r.last_error.empty() ? " (unreachable?)" : ": " + r.last_error));
      return 2;
    }
  }
  const v1::InitOk input = runs[0]->client->init_ok();  // a copy: iterating a temporary's field would dangle
  {
    std::lock_guard<std::mutex> lock(out_mutex);
    names.assign(input.class_names().begin(), input.class_names().end());
  }

  // One thread per client, all on the same schedule from the same t0 (frame i of every client is due at
  // t0 + i / fps). Frame ids: i with one client; i * N + client with N, so every id names its client.
  const double duration =
      o.duration > 0 ? o.duration : static_cast<double>(frames.size()) / (o.fps > 0 ? o.fps : header.fps());
  const auto t0 = Clock::now() + std::chrono::milliseconds(n > 1 ? 20 : 0);
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  auto offer = [&](std::size_t c) {
    ClientRun& r = *runs[c];
    std::this_thread::sleep_until(t0);
    for (std::uint64_t i = 0;; ++i) {
      if (o.fps > 0) {
        const auto due =
            t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / o.fps));
        if (due >= end) break;
        std::this_thread::sleep_until(due);
      } else {
        if (Clock::now() >= end) break;
        r.client->wait_idle(std::chrono::seconds(5));
      }
      v1::Frame f = frames[i % frames.size()];
      f.set_frame_id(n == 1 ? i : i * n + c);
      f.set_ts_mono_ns(0);  // stamped by the client at submit
      r.client->submit(std::move(f));
      ++r.offered;
    }
    // A client waits at most its frame in flight and one waiting frame: two turns of every client.
    r.client->wait_idle(std::chrono::seconds(10 + static_cast<long>(n)));
  };
  {
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < n; ++c) threads.emplace_back(offer, c);
    for (auto& t : threads) t.join();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& r : runs) {
    r->cs = r->client->stats();
    r->client->stop();
  }
  if (local) local->stop();

  // Per client: its own report (the same fields as a single client's), and the pool of all of them.
  pipeline::PipelineStats pooled;
  net::ClientStats pooled_cs;
  nlohmann::json per_client = nlohmann::json::array();
  for (std::size_t c = 0; c < n; ++c) {
    ClientRun& r = *runs[c];
    std::lock_guard<std::mutex> lock(r.m);
    r.s.offered = r.offered;
    r.s.dropped = r.cs.ai_drops_latestwins_total + r.server_dropped;
    const auto rep = pipeline_report(r.s, seconds, o.model, {0, 0}, 1, 2);
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
                          {"frames_lost_on_disconnect", r.cs.frames_lost_on_disconnect}});
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
    pooled_cs.ai_frame_inflight = pooled_cs.ai_frame_inflight || r.cs.ai_frame_inflight;
    pooled_cs.ai_result_latency_ms.merge(r.cs.ai_result_latency_ms);
  }

  // The top level: the one client's figures, or every client's frames pooled (fps_processed = the total
  // rate, p95_ms = the p95 over all frames); per-client figures and the worst of them beside it.
  const auto& cs = pooled_cs;
  nlohmann::json report = pipeline_report(
      pooled, seconds, o.model, {static_cast<int>(input.input_height()), static_cast<int>(input.input_width())}, 1, 2);
  report["server"] = o.server.empty() ? "in-process 127.0.0.1:" + std::to_string(cc.port) : o.server;
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
  report.erase("threads");

  // Across clients (also for one client, where they equal the top level): gateable, and in the JSON when N > 1.
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
      max_processed ? std::round(1000.0 * static_cast<double>(min_processed) / static_cast<double>(max_processed)) / 1000
                    : 0.0;
  const std::vector<std::pair<std::string, double>> across{
      {"clients", static_cast<double>(n)},  {"fairness", fairness},
      {"fps_processed_total", report["fps_processed"].get<double>()},
      {"fps_processed_min", fps_min},       {"fps_processed_max", fps_max},
      {"p50_ms_max", p50_max},              {"p95_ms_max", p95_max},
      {"p99_ms_max", p99_max},              {"max_ms_max", max_max},
      {"drop_pct_max", drop_max}};
  if (n > 1) {
    for (const auto& [k, v] : across) report[k] = v;
    report["clients"] = per_client;
    report["fps_offered_per_client"] = o.fps;
  }

  if (n > 1)
    out << "clients   " << n << " concurrent sessions on one worker, " << o.fps
        << " fps offered each; the figures below pool every client's frames\n";
  print_report(report, out);
  if (n > 1) {
    out << std::fixed;
    out << std::right << std::setw(6) << "client" << std::setw(9) << "offered" << std::setw(11) << "processed"
        << std::setw(9) << "dropped" << std::setw(8) << "errors" << std::setw(9) << "fps" << std::setw(9)
        << "p50 ms" << std::setw(9) << "p95 ms" << std::setw(9) << "max ms"
        << "\n";
    for (const auto& e : per_client)
      out << std::setw(6) << e["client"].get<int>() << std::setw(9) << e["frames_offered"].get<std::uint64_t>()
          << std::setw(11) << e["frames_processed"].get<std::uint64_t>() << std::setw(9)
          << e["frames_dropped"].get<std::uint64_t>() << std::setw(8) << e["frame_errors"].get<std::uint64_t>()
          << std::setprecision(2) << std::setw(9) << e["fps_processed"].get<double>() << std::setprecision(1)
          << std::setw(9) << e["e2e_ms"]["p50"].get<double>() << std::setw(9) << e["e2e_ms"]["p95"].get<double>()
          << std::setw(9) << e["e2e_ms"]["max"].get<double>() << "\n";
    out << std::setw(6) << "total" << std::setw(9) << report["frames_offered"].get<std::uint64_t>() << std::setw(11)
        << report["frames_processed"].get<std::uint64_t>() << std::setw(9)
        << report["frames_dropped"].get<std::uint64_t>() << std::setw(8)
        << report["frame_errors"].get<std::uint64_t>() << std::setprecision(2) << std::setw(9)
        << report["fps_processed"].get<double>() << "\n";
    out << "fairness  " << std::setprecision(3) << fairness << " (min / max client fps_processed: "
        << std::setprecision(2) << fps_min << " / " << fps_max << "); worst client p95 " << std::setprecision(1)
        << p95_max << " ms (client " << worst_p95 << ")\n";
  }
  out << "client    reconnects " << cs.ai_reconnects_total << ", lost on disconnect "
      << cs.frames_lost_on_disconnect << ", server " << report["server"].get<std::string>() << "\n";
  if (!o.json_path.empty() && !write_json_report(o.json_path, report)) return 2;
  auto metrics = gate_metrics(report);
  metrics.insert(metrics.end(), across.begin(), across.end());
  return check_gates(gates, metrics, /*prefix_match=*/false, out) ? 1 : 0;
}

}  // namespace aitw::bench
