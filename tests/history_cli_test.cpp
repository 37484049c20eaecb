// The execution history end to end: `aitw serve --history ...` serves a replay, and the store then holds one
// session whose frames_processed equals the replay's processed count; read back by `aitw history`,
// `aitw history stats` and `aitw fleet`. On SQLite (the embedded default) and on a MongoDB-wire server
// (CongoDB on loopback), including the server absent at start-up and killed while a session runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "aitw/testing/command.hpp"
#include "aitw/testing/ports.hpp"
#include "congodb.hpp"

namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kAitw = AITW_BINARY;

using namespace aitw::testing;  // free_port, run_command, slurp

aitw::testing::CommandResult run(const std::string& args) {
  return aitw::testing::run_command("AITW_MODEL_DIR=" + kShared + "/models " + kAitw + " " + args);
}

// `aitw serve` in the background, its log in `dir`; stop() is SIGTERM (drain, history flushed).
class Worker {
 public:
  Worker(const fs::path& dir, int port, const std::string& flags)
      : log_(dir / ("serve" + std::to_string(port) + ".log")) {
    const std::string cmd = "XDG_STATE_HOME=" + (dir / "state").string() + " AITW_MODEL_DIR=" + kShared +
                            "/models " + kAitw + " serve --listen 127.0.0.1:" + std::to_string(port) + " " +
                            flags + " > " + log_.string() + " 2>&1 & echo $!";
    FILE* p = popen(cmd.c_str(), "r");
    if (fscanf(p, "%d", &pid_) != 1) pid_ = -1;
    pclose(p);
    for (int i = 0; i < 100 && slurp(log_).find("serving on") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~Worker() { stop(); }
  bool stop() {
    if (pid_ <= 0) return true;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200 && kill(pid_, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const bool exited = kill(pid_, 0) != 0;
    if (!exited) kill(pid_, SIGKILL);
    pid_ = -1;
    return exited;
  }
  std::string log() const { return slurp(log_); }

 private:
  fs::path log_;
  int pid_ = -1;
};

struct Fixture {
  fs::path dir, rec;
  Fixture(const std::string& name) {
    dir = fs::temp_directory_path() / ("aitw_hcli_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    rec = dir / "pan.aitwrec";
    const auto r = run("record --pan --from " + kShared +
                       "/datasets/images/bus.jpg --fps 12 --duration 1 --out " + rec.string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~Fixture() { fs::remove_all(dir); }
  // The replay's processed frame count (its --json report).
  int replay(int port) {
    const auto json = dir / "replay.json";
    const auto r = run("replay " + rec.string() + " --server 127.0.0.1:" + std::to_string(port) + " --json " +
                       json.string());
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    std::ifstream f(json);
    return nlohmann::json::parse(f)["frames_processed"].get<int>();
  }
};

template <class F>
bool eventually(F done, int tries = 200) {
  for (int i = 0; i < tries; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace

TEST(HistoryCli, SqliteSessionMatchesTheReplayAndIsReadBack) {
  Fixture fx("sqlite");
  const int port = free_port();
  const std::string db = (fx.dir / "h.db").string();
  Worker w(fx.dir, port, "--history sqlite:" + db + " --worker-id edge-7");
  const int processed = fx.replay(port);
  EXPECT_GT(processed, 0);
  ASSERT_TRUE(w.stop()) << w.log();
  EXPECT_NE(w.log().find("history: sqlite:" + db), std::string::npos) << w.log();
  const auto h = run("history --history " + db + " --json");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  const auto rows = nlohmann::json::parse(h.out);
  ASSERT_EQ(rows.size(), 1u) << h.out;
  const auto& s = rows[0];
  EXPECT_EQ(s["frames_processed"].get<int>(), processed);
  // Window 1: the replay sends a frame only when the worker is Ready (12 offered, fewer sent).
  EXPECT_GE(s["frames_received"].get<int>(), processed);
  EXPECT_LE(s["frames_received"].get<int>(), 12);
  EXPECT_EQ(s["worker_id"], "edge-7");
  EXPECT_EQ(s["client_id"], "aitw-replay");
  EXPECT_EQ(s["model"], "yolo11n");
  EXPECT_EQ(s["model_sha256"].get<std::string>().size(), 64u);
  EXPECT_GT(s["p95_ms"].get<double>(), 0);
  EXPECT_GE(s["ended"].get<std::int64_t>(), s["started"].get<std::int64_t>());
  EXPECT_EQ(s["end_reason"], "client ended the session");
  // Filters, the table, stats and the fleet.
  EXPECT_EQ(nlohmann::json::parse(run("history --history " + db + " --json --model other").out).size(), 0u);
  EXPECT_EQ(
      nlohmann::json::parse(run("history --history " + db + " --json --since 1h --client aitw-replay").out)
          .size(),
      1u);
  EXPECT_NE(run("history --history " + db).out.find("1 session(s)"), std::string::npos);
  const auto st = nlohmann::json::parse(run("history stats --history " + db + " --json").out);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]["sessions"], 1);
  EXPECT_EQ(st[0]["frames_processed"].get<int>(), processed);
  const auto fl = nlohmann::json::parse(run("fleet --history sqlite:" + db + " --json").out);
  ASSERT_EQ(fl.size(), 1u);
  EXPECT_EQ(fl[0]["worker_id"], "edge-7");
  EXPECT_EQ(fl[0]["state"], "STOPPED");
  EXPECT_EQ(run("history --history " + (fx.dir / "absent.db").string()).exit_code, 1);
  EXPECT_EQ(run("history --history http://x").exit_code, 2);
  EXPECT_EQ(run("history --since 5x").exit_code, 2);
}

TEST(HistoryCli, DefaultIsXdgStateAndNoneTurnsItOff) {
  Fixture fx("default");
  const int port = free_port();
  {
    Worker w(fx.dir, port, "");
    fx.replay(port);
    ASSERT_TRUE(w.stop());
  }
  EXPECT_TRUE(fs::exists(fx.dir / "state/aitw/history.db"));
  fs::remove_all(fx.dir / "state");
  {
    Worker w(fx.dir, port, "--history none");
    fx.replay(port);
    ASSERT_TRUE(w.stop());
  }
  EXPECT_FALSE(fs::exists(fx.dir / "state/aitw/history.db"));
  EXPECT_EQ(run("serve --history mongodb://u:topsecret@").exit_code, 2);
}

TEST(HistoryCli, MongoSessionMatchesTheReplay) {
  aitw::history::testing::CongoDb congo;
  Fixture fx("mongo");
  const int port = free_port(), metrics = free_port();
  const std::string uri = congo.uri("aitw_e2e");
  Worker w(fx.dir, port,
           "--history " + uri + " --worker-id edge-m --metrics 127.0.0.1:" + std::to_string(metrics));
  const int processed = fx.replay(port);
  ASSERT_TRUE(eventually([&] {
    const auto h = run("history --history " + uri + " --json");
    return h.exit_code == 0 && nlohmann::json::parse(h.out).size() == 1;
  }));
  const auto m = run("fleet --history " + uri + " --json");
  const auto fl = nlohmann::json::parse(m.out);
  ASSERT_EQ(fl.size(), 1u) << m.out << m.err;
  EXPECT_EQ(fl[0]["worker_id"], "edge-m");
  EXPECT_NE(fl[0]["state"], "STOPPED");
  ASSERT_TRUE(w.stop());
  const auto rows = nlohmann::json::parse(run("history --history " + uri + " --json").out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["frames_processed"].get<int>(), processed);
  EXPECT_EQ(rows[0]["worker_id"], "edge-m");
  const auto st = nlohmann::json::parse(run("history stats --history " + uri + " --json").out);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]["frames_processed"].get<int>(), processed);
  EXPECT_EQ(nlohmann::json::parse(run("fleet --history " + uri + " --json").out)[0]["state"], "STOPPED");
}

// Mongo absent at start-up: serving starts and works; the record spools and arrives once the server is up.
// Then the server killed while a session runs: that session's record spools and arrives exactly once.
TEST(HistoryCli, MongoAbsentAtStartThenKilledMidSession) {
  aitw::history::testing::CongoDb congo;
  congo.stop();
  Fixture fx("mongofault");
  const int port = free_port(), metrics = free_port();
  const std::string uri = congo.uri("aitw_fault") + "?serverSelectionTimeoutMS=500&connectTimeoutMS=500";
  Worker w(fx.dir, port,
           "--history '" + uri + "' --worker-id edge-f --metrics 127.0.0.1:" + std::to_string(metrics));
  EXPECT_GT(fx.replay(port), 0);
  const auto metrics_text = [&] {
    FILE* p = popen(("curl -s http://127.0.0.1:" + std::to_string(metrics) + "/metrics").c_str(), "r");
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    pclose(p);
    return out;
  };
  // The model load event and the session.
  ASSERT_TRUE(eventually([&] { return metrics_text().find("history_spooled 2\n") != std::string::npos; }))
      << metrics_text();
  congo.start();
  ASSERT_TRUE(
      eventually([&] { return metrics_text().find("history_spooled 0\n") != std::string::npos; }, 400))
      << metrics_text();
  // Killed while the next session runs: the replay takes ~1 s; CongoDB goes in its middle and comes back.
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    congo.stop();
  });
  const int second = fx.replay(port);
  killer.join();
  ASSERT_TRUE(eventually([&] { return metrics_text().find("history_spooled 1\n") != std::string::npos; }));
  congo.start();  // empty (in memory): it now holds exactly what was spooled
  ASSERT_TRUE(
      eventually([&] { return metrics_text().find("history_spooled 0\n") != std::string::npos; }, 400));
  EXPECT_NE(metrics_text().find("history_dropped_total 0\n"), std::string::npos) << metrics_text();
  ASSERT_TRUE(w.stop());
  const auto rows = nlohmann::json::parse(run("history --history '" + uri + "' --json").out);
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  EXPECT_EQ(rows[0]["frames_processed"].get<int>(), second);
  // One log line per outage, not per record: each "cannot write" is followed by the "is back" that ends it
  // before the next one. At least the two outages above; on a loaded machine the worker saw three once
  // (ctest -j4 on 2 cores: a write went through between two failed ones), each logged once.
  const auto log = w.log();
  std::size_t outages = 0, recoveries = 0;
  bool down = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("history: cannot write") != std::string::npos) {
      EXPECT_FALSE(down) << "a second outage line before the first outage ended:\n" << log;
      down = true;
      ++outages;
    } else if (line.find("is back; the spooled records were sent") != std::string::npos) {
      down = false;
      ++recoveries;
    }
  }
  EXPECT_GE(outages, 2u) << log;
  EXPECT_EQ(recoveries, outages) << log;
  EXPECT_EQ(log.find("topsecret"), std::string::npos);
}

// A server that hangs (SIGSTOP: connections accepted, never answered): the worker serves on, as fast (a
// replay's figures were measured the same, p95 within noise: README), and the record arrives once the
// server answers again.
TEST(HistoryCli, HangingMongoDoesNotStopServing) {
  aitw::history::testing::CongoDb congo;
  Fixture fx("mongohang");
  const int port = free_port();
  const std::string uri = congo.uri("aitw_hang");
  Worker w(fx.dir, port, "--history " + uri + " --worker-id edge-h");
  congo.pause();
  const int processed = fx.replay(port);
  EXPECT_GT(processed, 0);
  congo.resume();
  ASSERT_TRUE(eventually(
      [&] {
        const auto h = run("history --history " + uri + " --json");
        return h.exit_code == 0 && nlohmann::json::parse(h.out).size() == 1;
      },
      400));
  ASSERT_TRUE(w.stop());
  const auto rows = nlohmann::json::parse(run("history --history " + uri + " --json").out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["frames_processed"].get<int>(), processed);
}
