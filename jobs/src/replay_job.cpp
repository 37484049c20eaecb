// `aitw replay`, first half: the source in memory, the worker (remote or in-process), N clients offering it
// on one schedule. What they saw goes to replay_report.cpp.
#include "aitw/jobs/replay.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "aitw/base/host_port.hpp"
#include "aitw/base/log.hpp"
#include "aitw/bench/gates.hpp"
#include "aitw/datasets/recording.hpp"
#include "aitw/jobs/record.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "auth_token.hpp"
#include "replay_report.hpp"

namespace aitw::jobs {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

bool is_recording(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f.gcount() == 8 && std::memcmp(magic, datasets::kRecordingMagic, 8) == 0;
}

// One client of the run: its own connection and Init, and what it saw (the tally). `m` guards s,
// server_dropped and last_error, written by the client's callbacks; `offered` is written by its offering
// thread only and read after that joined; `cs` is taken at the end.
struct ClientRun : ClientTally {
  std::unique_ptr<net::Client> client;
  std::mutex m;
  std::string last_error;
  Clock::time_point last_result;     // the start of the offering, then the last Result's arrival
  std::set<std::uint64_t> answered;  // frame ids with a Result: a second one is a duplicate
};

}  // namespace

std::optional<std::vector<HostPort>> parse_endpoints(const std::string& list, std::string* error) {
  std::vector<HostPort> eps;
  std::size_t from = 0;
  for (;;) {
    const auto comma = list.find(',', from);
    const std::string one = list.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    std::string why;
    const auto at = parse_host_port(one, &why);
    if (!at) {
      if (error) *error = "'" + one + "': " + why;
      return std::nullopt;
    }
    eps.push_back(*at);
    if (comma == std::string::npos) return eps;
    from = comma + 1;
  }
}

int run_replay(const ReplayOptions& o, std::ostream& out) {
  std::vector<bench::GateTerm> gates;
  if (!bench::parse_gates_or_log(o.gate, gates)) return 2;
  std::string auth_token;
  if (!o.auth_token_file.empty()) {
    const auto token = load_token_file(o.auth_token_file);
    if (!token) return 2;
    auth_token = *token;
  }
  // The source, as Frame messages in memory. Directories and videos are recorded first (640x480).
  std::string recording = o.source;
  fs::path temp;
  if (!is_recording(o.source)) {
    temp = fs::temp_directory_path() / ("aitw_replay_" + std::to_string(getpid()) + ".aitwrec");
    RecordOptions ro;
    ro.from = o.source;
    ro.fps = o.fps > 0 ? o.fps : 12;
    ro.out = temp.string();
    std::ostringstream log;
    if (run_record(ro, log) != 0) {
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
    sc.auth_token = auth_token;
    sc.precision = o.precision;
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
    const auto eps = parse_endpoints(o.server, &error);
    if (!eps) {
      log_error("--server '" + o.server + "': " + error);
      return 2;
    }
    cc.endpoints = *eps;
  }
  cc.init.set_model(o.model);
  cc.init.set_auth_token(auth_token);
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
            const auto now = Clock::now();
            r.max_gap_ms = std::max(r.max_gap_ms,
                                    std::chrono::duration<double, std::milli>(now - r.last_result).count());
            r.last_result = now;
            if (!r.answered.insert(res.frame_id()).second) ++r.duplicate_results;
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
          if (e.code() == net::kErrDraining) return;  // not about a frame: the client moves on (graceful)
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
      aitw::log_error(
          "replay: " + (n > 1 ? "client " + std::to_string(c) + " of " + std::to_string(n) + ": " : "") +
          "no InitOk from " + (o.server.empty() ? cc.host + ":" + std::to_string(cc.port) : o.server) +
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
  for (auto& r : runs) {
    std::lock_guard<std::mutex> lock(r->m);
    r->last_result = t0;
  }
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

  std::vector<ClientTally> tallies;
  for (auto& r : runs) {
    std::lock_guard<std::mutex> lock(r->m);
    // A client that stopped getting Results before the offering ended: that silence is a gap too.
    r->max_gap_ms =
        std::max(r->max_gap_ms, std::chrono::duration<double, std::milli>(end - r->last_result).count());
    tallies.push_back(*r);
  }
  const std::string server = o.server.empty() ? "in-process 127.0.0.1:" + std::to_string(cc.port) : o.server;
  return report_replay(std::move(tallies),
                       {seconds,
                        {static_cast<int>(input.input_height()), static_cast<int>(input.input_width())},
                        server,
                        {input.providers().begin(), input.providers().end()}},
                       o, gates, out);
}

}  // namespace aitw::jobs
