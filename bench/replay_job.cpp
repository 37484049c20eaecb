#include "aitw/bench/replay.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "aitw/bench/gates.hpp"
#include "aitw/bench/pipeline_bench.hpp"
#include "aitw/datasets/record.hpp"
#include "aitw/datasets/recording.hpp"
#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "aitw/pipeline/log.hpp"

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
      pipeline::log_error("replay: " + log.str());
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
    pipeline::log_error(e.what());
    return 2;
  }
  if (!temp.empty()) fs::remove(temp);
  if (frames.empty() || header.width() == 0 || header.height() == 0) {
    pipeline::log_error("replay: '" + o.source + "' has no usable frames");
    return 2;
  }

  // The worker: remote, or in-process on loopback.
  std::unique_ptr<net::Server> local;
  net::ClientConfig cc;
  if (o.server.empty()) {
    net::ServerConfig sc;
    sc.port = 0;
    // The in-process worker serves this user's own --model: a path is allowed in its own folder.
    if (o.model.find('/') != std::string::npos || o.model.ends_with(".onnx"))
      sc.model_dirs = {std::filesystem::absolute(o.model).parent_path().string()};
    sc.auth_token = o.auth_token;
    local = std::make_unique<net::Server>(sc);
    try {
      local->start();
    } catch (const std::exception& e) {
      pipeline::log_error(e.what());
      return 2;
    }
    cc.port = local->port();
  } else {
    const auto colon = o.server.rfind(':');
    if (colon == std::string::npos) {
      pipeline::log_error("--server: expected HOST:PORT, got '" + o.server + "'");
      return 2;
    }
    cc.host = o.server.substr(0, colon);
    cc.port = static_cast<std::uint16_t>(std::atoi(o.server.c_str() + colon + 1));
  }
  cc.init.set_model(o.model);
  cc.init.set_auth_token(o.auth_token);
  cc.init.set_width(header.width());
  cc.init.set_height(header.height());
  cc.init.set_format(header.format());
  cc.init.set_client_id("aitw-replay");
  if (o.conf > 0) cc.init.mutable_thresholds()->set_conf(o.conf);

  std::mutex m;
  pipeline::PipelineStats s;  // filled from the client's side
  std::uint64_t server_dropped = 0;
  std::ofstream detections;
  if (!o.detections_path.empty()) {
    detections.open(o.detections_path);
    if (!detections) {
      pipeline::log_error("--detections: cannot write " + o.detections_path);
      return 2;
    }
  }
  std::vector<std::string> names;
  std::string last_error;
  net::Client client(
      cc,
      [&](const v1::Result& r, double latency) {
        std::lock_guard<std::mutex> lock(m);
        ++s.processed;
        s.e2e.record(latency);
        s.decode.record(r.times().decode_ms());
        s.preprocess.record(r.times().preprocess_ms());
        s.queue.record(r.times().queue_ms());
        s.infer.record(r.times().infer_ms());
        s.postprocess.record(r.times().postprocess_ms());
        if (detections) {
          nlohmann::json dets = nlohmann::json::array();
          for (const auto& d : r.detections())
            dets.push_back({{"class_id", d.class_id()},
                            {"class_name", d.class_id() < names.size() ? names[d.class_id()] : ""},
                            {"score", d.score()},
                            {"box", {d.x1(), d.y1(), d.x2(), d.y2()}}});
          detections << nlohmann::json{{"frame_id", r.frame_id()},
                                       {"ts_mono_ns", r.ts_mono_ns()},
                                       {"latency_ms", latency},
                                       {"detections", dets}}
                            .dump()
                     << "\n";
        }
      },
      [&](const v1::Error& e) {
        std::lock_guard<std::mutex> lock(m);
        if (e.code() == net::kErrDropped) {
          ++server_dropped;
          return;
        }
        ++s.errors;
        ++s.errors_by_cause["code_" + std::to_string(e.code())];
        last_error = e.message();
      });
  client.start();
  if (!client.wait_initialized(std::chrono::seconds(30))) {
    std::lock_guard<std::mutex> lock(m);
    pipeline::log_error("replay: no InitOk from " + cc.host + ":" + std::to_string(cc.port) +
                        (last_error.empty() ? " (unreachable?)" : ": " + last_error));
    return 2;
  }
  const v1::InitOk input = client.init_ok();  // a copy: iterating a temporary's field would dangle
  {
    std::lock_guard<std::mutex> lock(m);
    names.assign(input.class_names().begin(), input.class_names().end());
  }

  const double duration =
      o.duration > 0 ? o.duration : static_cast<double>(frames.size()) / (o.fps > 0 ? o.fps : header.fps());
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  std::uint64_t offered = 0;
  for (std::uint64_t i = 0;; ++i) {
    if (o.fps > 0) {
      const auto due =
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / o.fps));
      if (due >= end) break;
      std::this_thread::sleep_until(due);
    } else {
      if (Clock::now() >= end) break;
      client.wait_idle(std::chrono::seconds(5));
    }
    v1::Frame f = frames[i % frames.size()];
    f.set_frame_id(i);
    f.set_ts_mono_ns(0);  // stamped by the client at submit
    client.submit(std::move(f));
    ++offered;
  }
  client.wait_idle(std::chrono::seconds(10));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto cs = client.stats();
  client.stop();
  if (local) local->stop();

  nlohmann::json report;
  {
    std::lock_guard<std::mutex> lock(m);
    s.offered = offered;
    s.dropped = cs.ai_drops_latestwins_total + server_dropped;
    report = pipeline_report(s, seconds, o.model,
                             {static_cast<int>(input.input_height()), static_cast<int>(input.input_width())},
                             1, 2);
  }
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
  print_report(report, out);
  out << "client    reconnects " << cs.ai_reconnects_total << ", lost on disconnect "
      << cs.frames_lost_on_disconnect << ", server " << report["server"].get<std::string>() << "\n";
  if (!o.json_path.empty() && !write_json_report(o.json_path, report)) return 2;
  return check_gates(gates, gate_metrics(report), /*prefix_match=*/false, out) ? 1 : 0;
}

}  // namespace aitw::bench
