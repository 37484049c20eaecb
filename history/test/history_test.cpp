// The SQLite sink, the URI rules and the Recorder (batches, spool while the store is down, exactly once
// when it returns) with no server: a fake Sink that fails on demand.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "aitw/history/history.hpp"
#include "aitw/history/recorder.hpp"
#include "aitw/mongodb/mongodb.hpp"
#include "history_fixtures.hpp"

namespace fs = std::filesystem;
using namespace aitw::history;

namespace {

using namespace aitw::history::testing;  // history_fixtures.hpp

RecorderOptions options(const std::string& spool) {
  RecorderOptions o;
  o.worker_id = "w1";
  o.flush_interval = std::chrono::milliseconds(20);
  o.spool_path = spool;
  return o;
}

fs::path temp_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("aitw_history_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

aitw::net::SessionRecord session(std::uint64_t id, const std::string& model, const std::string& client,
                                 std::int64_t ended, std::uint64_t received, std::uint64_t processed,
                                 double p95) {
  aitw::net::SessionRecord r;
  r.session = id;
  r.client_id = client;
  r.peer = "127.0.0.1:5000";
  r.model = model;
  r.model_sha256 = "ab";
  r.started_ms = ended - 1000;
  r.ended_ms = ended;
  r.frames_received = received;
  r.frames_processed = processed;
  r.frames_dropped = received - processed;
  r.p50_ms = p95 / 2;
  r.p95_ms = p95;
  r.p99_ms = p95 * 1.2;
  r.end_reason = "client ended the session";
  return r;
}

SessionEntry entry(const std::string& key, aitw::net::SessionRecord r) {
  return {key, "w1", std::move(r)};
}

}  // namespace

TEST(HistoryUri, NoneSqliteAndMalformed) {
  EXPECT_EQ(open_sink("none"), nullptr);
  const auto d = temp_dir("uri");
  EXPECT_EQ(open_sink("sqlite:" + (d / "a.db").string())->describe(), "sqlite:" + (d / "a.db").string());
  EXPECT_EQ(open_sink((d / "sub/b.db").string())->describe(), "sqlite:" + (d / "sub/b.db").string());
  EXPECT_TRUE(fs::exists(d / "sub/b.db"));
  EXPECT_THROW(open_sink("http://x/y"), std::invalid_argument);
  EXPECT_THROW(open_sink("sqlite:"), std::invalid_argument);
  try {
    open_sink("mongodb://user:secret@");
    ADD_FAILURE() << "a URI without a host was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(HistoryUri, RedactsCredentials) {
  using aitw::mongodb::redact_uri;
  EXPECT_EQ(redact_uri("mongodb://alice:s3cret@db.example:27017/aitw?authSource=admin"),
            "mongodb://***@db.example:27017/aitw?authSource=admin");
  EXPECT_EQ(redact_uri("mongodb://h:1/db"), "mongodb://h:1/db");
  EXPECT_EQ(redact_uri("sqlite:/a@b/c.db"), "sqlite:/a@b/c.db");
}

TEST(HistoryUri, FlagThenEnvironmentThenXdgDefault) {
  setenv("XDG_STATE_HOME", "/tmp/xdg-state", 1);
  unsetenv("AITW_HISTORY");
  EXPECT_EQ(default_sqlite_path(), "/tmp/xdg-state/aitw/history.db");
  EXPECT_EQ(resolve_uri(""), "sqlite:/tmp/xdg-state/aitw/history.db");
  setenv("AITW_HISTORY", "mongodb://h:1/db", 1);
  EXPECT_EQ(resolve_uri(""), "mongodb://h:1/db");
  EXPECT_EQ(resolve_uri("none"), "none");
  unsetenv("AITW_HISTORY");
  unsetenv("XDG_STATE_HOME");
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(default_sqlite_path(), "/home/someone/.local/state/aitw/history.db");
}

TEST(SqliteSink, WalUpsertsQueriesAndStats) {
  const auto d = temp_dir("sqlite");
  const auto path = (d / "h.db").string();
  auto sink = open_sink("sqlite:" + path);
  Batch b;
  b.sessions = {entry("w1/1/1", session(1, "yolo11n", "cam-a", 10'000, 100, 90, 30)),
                entry("w1/1/2", session(2, "yolo11n", "cam-a", 20'000, 50, 50, 45)),
                entry("w1/1/3", session(3, "yolov8n", "cam-b", 30'000, 10, 5, 80))};
  b.events = {{"w1/1/1", "w1", {"load", "yolo11n", 250, "", 9'000}}};
  b.workers = {{"w1", "host", "0.1.0", "READY", 1, 0, 3, 1'000, 30'000}};
  sink->write(b);
  sink->write(b);  // a resent batch replaces itself
  expect_three_sessions_read_back(*sink);
  const auto all = sink->sessions({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].record.end_reason, "client ended the session");
  EXPECT_DOUBLE_EQ(all[1].record.p95_ms, 45);
  EXPECT_EQ(sink->sessions(query(0, "yolov8n", "cam-a")).size(), 0u);
  const auto stats = sink->stats({});
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_NEAR(stats[0].drop_percent(), 100.0 * 10 / 150, 1e-9);
  b.workers[0].state = "STOPPED";
  sink->write(only_workers(b.workers));
  const auto w = sink->workers();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].state, "STOPPED");
  EXPECT_EQ(w[0].last_seen_ms, 30'000);
  sink.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), "wal");
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Events older than the retention are removed when the database is opened.
  open_sink("sqlite:" + path, {.retention = std::chrono::seconds(60)});
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  fs::remove_all(d);
}

TEST(SqliteSink, UnwritablePathIsAnErrorNamingIt) {
  try {
    open_sink("sqlite:/proc/aitw/none/h.db");
    ADD_FAILURE() << "opened a database under /proc";
  } catch (const SinkError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/aitw/none/h.db"), std::string::npos) << e.what();
  }
}

// A store that can be switched off, counting what it stored by key.
class FlakySink : public Sink {
 public:
  std::atomic<bool> up{true};
  std::mutex mu;
  std::map<std::string, int> session_writes;  // stored copies per key (upserts: 1 however often sent)
  std::map<std::string, aitw::net::SessionRecord> sessions_by_key;
  std::vector<WorkerRecord> worker_updates;
  int failed_writes = 0;
  std::string describe() const override { return "flaky"; }
  void write(const Batch& b) override {
    std::lock_guard lock(mu);
    if (!up) {
      ++failed_writes;
      throw SinkError("flaky: down");
    }
    for (const auto& s : b.sessions) {
      session_writes[s.session_key] = 1;
      sessions_by_key[s.session_key] = s.record;
    }
    for (const auto& w : b.workers) worker_updates.push_back(w);
  }
  std::vector<SessionEntry> sessions(const Query&) override { return {}; }
  std::vector<StatsRow> stats(const Query&) override { return {}; }
  std::vector<WorkerRecord> workers() override { return {}; }
  std::size_t stored() {
    std::lock_guard lock(mu);
    return sessions_by_key.size();
  }
};

TEST(Recorder, WritesBatchesAndTheWorkerRecord) {
  auto sink = std::make_unique<FlakySink>();
  auto* s = sink.get();
  RecorderOptions o;
  o.worker_id = "w1";
  o.flush_interval = std::chrono::milliseconds(20);
  o.worker_snapshot = [] {
    WorkerRecord w;
    w.state = "READY";
    w.models_loaded = 1;
    return w;
  };
  Recorder r(std::move(sink), o);
  for (std::uint64_t i = 1; i <= 5; ++i) r.session_ended(session(i, "m", "c", 1000, 3, 3, 1));
  ASSERT_TRUE(eventually([&] { return s->stored() == 5; }));
  r.stop();
  std::lock_guard lock(s->mu);
  EXPECT_TRUE(s->sessions_by_key.count("w1/" + r.run_id() + "/3"));
  ASSERT_GE(s->worker_updates.size(), 2u);  // at start and the final one
  EXPECT_EQ(s->worker_updates.front().state, "READY");
  EXPECT_EQ(s->worker_updates.front().worker_id, "w1");
  EXPECT_EQ(s->worker_updates.back().state, "STOPPED");
  EXPECT_EQ(r.dropped_total(), 0u);
}

TEST(Recorder, SpoolsWhileDownAndSendsEachRecordOnceWhenBack) {
  const auto d = temp_dir("spool");
  auto sink = std::make_unique<FlakySink>();
  auto* s = sink.get();
  s->up = false;
  RecorderOptions o;
  o.worker_id = "w1";
  o.flush_interval = std::chrono::milliseconds(20);
  o.spool_path = (d / "spool.jsonl").string();
  Recorder r(std::move(sink), o);
  for (std::uint64_t i = 1; i <= 20; ++i) r.session_ended(session(i, "m", "c", 1000, i, i, 1));
  ASSERT_TRUE(eventually([&] { return r.spooled() == 20; })) << r.spooled();
  EXPECT_TRUE(fs::exists(o.spool_path));
  EXPECT_EQ(s->stored(), 0u);
  s->up = true;
  ASSERT_TRUE(eventually([&] { return r.spooled() == 0 && s->stored() == 20; }))
      << r.spooled() << " " << s->stored();
  EXPECT_FALSE(fs::exists(o.spool_path));
  r.stop();
  std::lock_guard lock(s->mu);
  for (std::uint64_t i = 1; i <= 20; ++i)
    EXPECT_EQ(s->sessions_by_key.at("w1/" + r.run_id() + "/" + std::to_string(i)).frames_processed, i);
  EXPECT_EQ(r.dropped_total(), 0u);
  fs::remove_all(d);
}

TEST(Recorder, SpoolIsBoundedAndOverflowIsCounted) {
  const auto d = temp_dir("bounded");
  auto sink = std::make_unique<FlakySink>();
  sink->up = false;
  RecorderOptions o;
  o.worker_id = "w1";
  o.flush_interval = std::chrono::milliseconds(20);
  o.spool_path = (d / "spool.jsonl").string();
  o.spool_max_bytes = 2000;  // a few records
  Recorder r(std::move(sink), o);
  for (std::uint64_t i = 1; i <= 30; ++i) r.session_ended(session(i, "m", "c", 1000, 1, 1, 1));
  ASSERT_TRUE(eventually([&] { return r.spooled() + r.dropped_total() == 30; }));
  EXPECT_GT(r.spooled(), 0u);
  EXPECT_GT(r.dropped_total(), 0u);
  EXPECT_LE(fs::file_size(o.spool_path), 2000u);
  r.stop();
  fs::remove_all(d);
}

TEST(Recorder, ASpoolLeftByAnEarlierRunIsSentFirst) {
  const auto d = temp_dir("leftover");
  const auto spool = (d / "spool.jsonl").string();
  {
    auto sink = std::make_unique<FlakySink>();
    sink->up = false;
    RecorderOptions o = options(spool);
    Recorder r(std::move(sink), o);
    for (std::uint64_t i = 1; i <= 4; ++i) r.session_ended(session(i, "m", "c", 1000, 1, 1, 1));
    r.stop();  // the store is still down: the records stay spooled
    EXPECT_EQ(r.spooled(), 4u);
  }
  auto sink = std::make_unique<FlakySink>();
  auto* s = sink.get();
  RecorderOptions o = options(spool);
  Recorder r(std::move(sink), o);
  EXPECT_TRUE(eventually([&] { return s->stored() == 4; }));
  r.stop();
  EXPECT_EQ(r.spooled(), 0u);
  fs::remove_all(d);
}

// A store that hangs (a slow MongoDB): the server's callbacks still return at once, since only the
// Recorder's thread waits on it; what queued meanwhile is written when the store answers.
TEST(Recorder, AHangingStoreNeverBlocksTheCallbacks) {
  struct HangingSink : FlakySink {
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool open = false;
    std::atomic<int> entered{0};
    void write(const Batch& b) override {
      ++entered;
      std::unique_lock lock(gate_mu);
      gate_cv.wait(lock, [this] { return open; });
      lock.unlock();
      FlakySink::write(b);
    }
    void release() {
      {
        std::lock_guard lock(gate_mu);
        open = true;
      }
      gate_cv.notify_all();
    }
  };
  auto sink = std::make_unique<HangingSink>();
  auto* s = sink.get();
  RecorderOptions o;
  o.worker_id = "w1";
  o.flush_interval = std::chrono::milliseconds(20);
  Recorder r(std::move(sink), o);
  r.session_ended(session(1, "m", "c", 1000, 1, 1, 1));
  ASSERT_TRUE(eventually([&] { return s->entered.load() >= 1; }));  // the writer is stuck in the store
  for (std::uint64_t i = 2; i <= 1000; ++i) r.session_ended(session(i, "m", "c", 1000, 1, 1, 1));
  EXPECT_EQ(s->stored(), 0u);  // all queued while the store hangs; none was lost
  s->release();
  EXPECT_TRUE(eventually([&] { return s->stored() == 1000; })) << s->stored();
  r.stop();
  EXPECT_EQ(r.dropped_total(), 0u);
}
