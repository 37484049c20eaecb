#pragma once
// What the history suites build their inputs from: a Query, a Batch of worker documents only, the wait for
// the Recorder's background thread, and the read-back every Sink must give for the same three sessions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aitw/history/history.hpp"

namespace aitw::history::testing {

inline Query query(std::int64_t since, const std::string& model = "", const std::string& client = "") {
  Query q;
  q.since_ms = since;
  q.model = model;
  q.client = client;
  return q;
}

inline Batch only_workers(std::vector<WorkerRecord> w) {
  Batch b;
  b.workers = std::move(w);
  return b;
}

// Waits up to 20 s for `done` (the Recorder's thread works in the background).
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// What any backend returns after a write of sessions w1/1/1 (yolo11n, cam-a, ended 10 s, 100 received,
// 90 processed, p95 30 ms), w1/1/2 (yolo11n, cam-a, 20 s, 50/50, 45 ms) and w1/1/3 (yolov8n, cam-b, 30 s,
// 10/5, 80 ms): newest first, the filters on time, model and client, and the stats grouped by model and
// client. The SQLite and MongoDB suites both call it, so the two backends are held to one contract.
inline void expect_three_sessions_read_back(Sink& sink) {
  const auto all = sink.sessions({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].session_key, "w1/1/3");  // newest first
  EXPECT_EQ(all[2].record.frames_processed, 90u);
  EXPECT_EQ(sink.sessions(query(15'000)).size(), 2u);
  EXPECT_EQ(sink.sessions(query(0, "yolov8n")).size(), 1u);
  EXPECT_EQ(sink.sessions(query(0, "", "cam-a")).size(), 2u);
  const auto stats = sink.stats({});
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].model, "yolo11n");
  EXPECT_EQ(stats[0].client, "cam-a");
  EXPECT_EQ(stats[0].sessions, 2u);
  EXPECT_EQ(stats[0].frames_received, 150u);
  EXPECT_EQ(stats[0].frames_dropped, 10u);
  EXPECT_DOUBLE_EQ(stats[0].worst_p95_ms, 45);
}

}  // namespace aitw::history::testing
