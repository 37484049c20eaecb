// The MongoDB backend over the wire: CongoDB on loopback (tests/congodb, scripts/install-congodb.sh). One
// server per test process (ctest runs each test alone), started on first use.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "aitw/history/history.hpp"
#include "aitw/history/recorder.hpp"
#include "congodb.hpp"
#include "history_fixtures.hpp"

namespace fs = std::filesystem;
using namespace aitw::history;

namespace {

using namespace aitw::history::testing;  // history_fixtures.hpp

aitw::history::testing::CongoDb& congo() {
  static aitw::history::testing::CongoDb server;
  return server;
}

SessionEntry entry(const std::string& key, const std::string& model, const std::string& client,
                   std::int64_t ended, std::uint64_t received, std::uint64_t processed, double p95) {
  SessionEntry e{key, "w1", {}};
  auto& r = e.record;
  r.client_id = client;
  r.model = model;
  r.started_ms = ended - 1000;
  r.ended_ms = ended;
  r.frames_received = received;
  r.frames_processed = processed;
  r.frames_dropped = received - processed;
  r.p95_ms = p95;
  r.end_reason = "client ended the session";
  return e;
}

}  // namespace

TEST(MongoSink, UpsertsQueriesAggregatesAndFleet) {
  auto sink = open_sink(congo().uri("hist_a"), {.retention = std::chrono::hours(1)});
  Batch b;
  b.sessions = {entry("w1/1/1", "yolo11n", "cam-a", 10'000, 100, 90, 30),
                entry("w1/1/2", "yolo11n", "cam-a", 20'000, 50, 50, 45),
                entry("w1/1/3", "yolov8n", "cam-b", 30'000, 10, 5, 80)};
  b.events = {{"w1/1/1", "w1", {"load", "yolo11n", 250, "", 9'000}}};
  b.workers = {{"w1", "host", "0.1.0", "READY", 1, 0, 3, 1'000, 30'000}};
  sink->write(b);
  sink->write(b);  // resent: the same documents, not copies
  expect_three_sessions_read_back(*sink);
  const auto all = sink->sessions({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].record.ended_ms, 10'000);
  b.workers[0].state = "STOPPED";
  b.workers[0].last_seen_ms = 40'000;
  sink->write(only_workers(b.workers));
  const auto w = sink->workers();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].state, "STOPPED");
  EXPECT_EQ(w[0].last_seen_ms, 40'000);
}

TEST(MongoSink, ServerAbsentFailsTheWriteNotTheOpen) {
  // A port nobody listens on: opening succeeds (serving must start), the write fails with a SinkError that
  // names the store without its credentials.
  auto sink = open_sink("mongodb://bob:pw123@127.0.0.1:1/x?serverSelectionTimeoutMS=300");
  try {
    Batch one;
    one.sessions = {entry("k", "m", "c", 1, 1, 1, 1)};
    sink->write(one);
    ADD_FAILURE() << "a write to a closed port succeeded";
  } catch (const SinkError& e) {
    EXPECT_EQ(std::string(e.what()).find("pw123"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}

// The server killed while sessions end: the records spool to disk, and when it is back each arrives exactly
// once (sessions ended before the outage were stored before it; CongoDB keeps memory only, so the
// restarted server holds exactly what was spooled and what came after).
TEST(MongoSink, KilledServerSpoolsAndEachRecordArrivesOnceWhenBack) {
  const auto dir = fs::temp_directory_path() / ("aitw_history_mongo_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto& c = congo();
  RecorderOptions o;
  o.worker_id = "w9";
  o.flush_interval = std::chrono::milliseconds(20);
  o.spool_path = (dir / "spool.jsonl").string();
  Recorder r(open_sink(c.uri("hist_fault") + "?serverSelectionTimeoutMS=500&connectTimeoutMS=500"), o);
  auto reader = open_sink(c.uri("hist_fault"));
  aitw::net::SessionRecord s;
  s.session = 1;
  s.frames_processed = 1;
  r.session_ended(s);
  ASSERT_TRUE(eventually([&] { return r.written_total() == 1; }));
  c.stop();
  for (std::uint64_t i = 2; i <= 11; ++i) {
    s.session = i;
    s.frames_processed = i;
    r.session_ended(s);
  }
  ASSERT_TRUE(eventually([&] { return r.spooled() == 10; })) << r.spooled();
  c.start();
  for (std::uint64_t i = 12; i <= 14; ++i) {
    s.session = i;
    s.frames_processed = i;
    r.session_ended(s);
  }
  ASSERT_TRUE(eventually([&] { return r.spooled() == 0 && r.written_total() == 14; }))
      << r.spooled() << " " << r.written_total();
  r.stop();
  const auto got = reader->sessions({});
  std::multiset<std::string> keys;
  for (const auto& e : got) keys.insert(e.session_key);
  EXPECT_EQ(got.size(), 13u);
  for (std::uint64_t i = 2; i <= 14; ++i) {
    const std::string k = "w9/" + r.run_id() + "/" + std::to_string(i);
    EXPECT_EQ(keys.count(k), 1u) << k;
  }
  EXPECT_EQ(r.dropped_total(), 0u);
  fs::remove_all(dir);
}
