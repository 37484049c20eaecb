// What the server hands the execution history: one SessionRecord per session that sent an Init, when it
// ends, with its counters and latency percentiles; a ModelEvent per load, failed load and unload.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "aitw/net/server.hpp"
#include "protocol_peer.hpp"
#include "test_server.hpp"

namespace aitw::net {
namespace {

using namespace testing;  // protocol_peer.hpp, test_server.hpp
using namespace std::chrono_literals;

struct Collected {
  std::mutex mu;
  std::vector<SessionRecord> sessions;
  std::vector<ModelEvent> events;
  std::size_t session_count() {
    std::lock_guard lock(mu);
    return sessions.size();
  }
  bool has_event(const std::string& kind) {
    std::lock_guard lock(mu);
    for (const auto& e : events)
      if (e.kind == kind) return true;
    return false;
  }
};

template <class F>
bool eventually(F done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

}  // namespace

TEST(ServerRecords, SessionEndAndModelEvents) {
  const auto broken =
      std::filesystem::temp_directory_path() / ("aitw_records_broken_" + std::to_string(getpid()) + ".onnx");
  std::ofstream(broken) << "this is not a model";
  Collected got;
  ServerConfig cfg;
  cfg.idle_timeout = 300ms;
  cfg.on_session_end = [&got](const SessionRecord& r) {
    std::lock_guard lock(got.mu);
    got.sessions.push_back(r);
  };
  cfg.on_model_event = [&got](const ModelEvent& e) {
    std::lock_guard lock(got.mu);
    got.events.push_back(e);
  };
  auto server = start_server(cfg);
  std::string model_id;
  {
    Peer p(server->port());
    p.send(init_msg(broken.string()));
    auto e = p.recv();
    ASSERT_TRUE(e && e->has_error());  // a load failure, answered (one Error sent)
    model_id = p.handshake(kYolo11).model_id();
    for (std::uint64_t id = 1; id <= 3; ++id) {
      p.send(frame_msg(id));
      auto r = p.recv();
      ASSERT_TRUE(r && r->has_result());
      ASSERT_TRUE(p.recv()->has_ready());
    }
  }  // the peer closes its connection
  ASSERT_TRUE(eventually([&] { return got.session_count() == 1; }));
  ASSERT_TRUE(eventually([&] { return got.has_event("unload"); }));  // idle unload
  { Peer never_init(server->port()); }  // a connection without an Init is not a session of the history
  std::this_thread::sleep_for(200ms);
  server->stop();
  std::lock_guard lock(got.mu);
  ASSERT_EQ(got.sessions.size(), 1u);
  const auto& s = got.sessions[0];
  EXPECT_EQ(s.client_id, "test");
  EXPECT_EQ(s.model, kYolo11);
  EXPECT_EQ(s.model_sha256, model_id);
  EXPECT_EQ(s.frames_received, 3u);
  EXPECT_EQ(s.frames_processed, 3u);
  EXPECT_EQ(s.frames_dropped, 0u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_GT(s.p50_ms, 0);
  EXPECT_LE(s.p50_ms, s.p95_ms);
  EXPECT_LE(s.p95_ms, s.p99_ms);
  EXPECT_LE(s.started_ms, s.ended_ms);
  EXPECT_GT(s.started_ms, 1'600'000'000'000);  // wall-clock milliseconds
  EXPECT_EQ(s.end_reason, "connection closed");
  EXPECT_FALSE(s.peer.empty());
  ASSERT_GE(got.events.size(), 3u);
  EXPECT_EQ(got.events[0].kind, "load_failed");
  EXPECT_EQ(got.events[0].model, broken.string());
  EXPECT_FALSE(got.events[0].error.empty());
  EXPECT_EQ(got.events[1].kind, "load");
  EXPECT_EQ(got.events[1].model, kYolo11);
  EXPECT_GT(got.events[1].ms, 0);
  EXPECT_EQ(got.events[2].kind, "unload");
  EXPECT_NE(got.events[2].model.find("yolo11n.onnx"), std::string::npos);
  std::filesystem::remove(broken);
}

}  // namespace aitw::net
