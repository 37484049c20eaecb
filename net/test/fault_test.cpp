// Fault injection between the client and the worker: a TCP proxy inside the test that fragments every
// message into 1-byte writes, stalls or cuts connections; and the worker process killed with SIGKILL
// mid-stream and restarted. The client must reconnect, re-Init and go on; no result arrives twice and
// frame ids stay monotonic.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "protocol_peer.hpp"
#include "tcp_proxy.hpp"

namespace aitw::net {
namespace {

using asio::ip::tcp;
using testing::camera_jpeg;
using testing::Proxy;
using namespace std::chrono_literals;
const std::string kShared = AITW_SHARED_DIR;

v1::Frame frame(std::uint64_t id) {
  v1::Frame f;
  f.set_frame_id(id);
  f.set_width(640);
  f.set_height(480);
  f.set_format(v1::JPEG);
  f.set_pixels(camera_jpeg());
  return f;
}

v1::Init init(const std::string& model) {
  v1::Init i;
  i.set_model(model);
  i.set_width(640);
  i.set_height(480);
  i.set_format(v1::JPEG);
  i.set_client_id("fault-test");
  return i;
}

// Results seen by a client: ids must be strictly increasing (no duplicate, no reordering).
struct Seen {
  std::mutex mu;
  std::vector<std::uint64_t> ids;
  void add(std::uint64_t id) {
    std::lock_guard lock(mu);
    ids.push_back(id);
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return ids.size();
  }
  void expect_monotonic() {
    std::lock_guard lock(mu);
    for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << "at " << i;
  }
};

std::unique_ptr<Server> start_server(ServerConfig cfg = {}) {
  cfg.port = 0;
  cfg.model_dirs = {kShared + "/models"};
  // Deadlines these tests are not about stay far away: a model load under TSan can take several seconds.
  if (cfg.init_timeout == ServerConfig{}.init_timeout) cfg.init_timeout = std::chrono::minutes(2);
  auto s = std::make_unique<Server>(cfg);
  s->start();
  return s;
}

// Offers frames at ~20 fps until `n` results arrived or the deadline passed.
void stream(Client& client, Seen& seen, std::uint64_t& next_id, std::size_t n, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const std::size_t target = seen.size() + n;
  while (seen.size() < target && std::chrono::steady_clock::now() < deadline) {
    client.submit(frame(next_id++));
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace

TEST(Fault, ProtocolSurvivesOneByteFragmentationBothWays) {
  auto server = start_server();
  Proxy proxy(server->port());
  proxy.set_mode(Proxy::Mode::Fragment);
  ClientConfig cc;
  cc.port = proxy.port();
  cc.init = init(kShared + "/models/yolo11n.onnx");
  Seen seen;
  Client client(cc, [&](const v1::Result& r, double) { seen.add(r.frame_id()); });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  for (std::uint64_t id = 1; id <= 3; ++id) {
    client.submit(frame(id));
    ASSERT_TRUE(client.wait_idle(60s));
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(client.stats().ai_reconnects_total, 0u);
  EXPECT_EQ(server->stats().errors_by_cause.size(), 0u);
  client.stop();
}

TEST(Fault, UpstreamStallMidMessageIsCutAndTheClientRecovers) {
  ServerConfig cfg;
  cfg.message_timeout = 500ms;
  auto server = start_server(cfg);
  Proxy proxy(server->port());
  // The first connection carries Init (~60 bytes) and then only the first 1000 bytes of a frame.
  proxy.set_mode(Proxy::Mode::StallUp, 1000);
  ClientConfig cc;
  cc.port = proxy.port();
  cc.init = init(kShared + "/models/yolo11n.onnx");
  cc.backoff_initial = 50ms;
  Seen seen;
  Client client(cc, [&](const v1::Result& r, double) { seen.add(r.frame_id()); });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  proxy.set_mode(Proxy::Mode::Pass);  // later connections are healthy
  std::uint64_t id = 1;
  stream(client, seen, id, 5, 120s);
  EXPECT_GE(seen.size(), 5u);
  EXPECT_GE(client.stats().ai_reconnects_total, 1u);
  EXPECT_GE(client.stats().ai_init_ok_total, 2u);
  EXPECT_GE(server->stats().errors_by_cause.at("timeout"), 1u);  // the server cut the stalled message
  seen.expect_monotonic();
  client.stop();
}

TEST(Fault, DownstreamStallIsDetectedByTheClientHeartbeat) {
  auto server = start_server();
  Proxy proxy(server->port());
  proxy.set_mode(Proxy::Mode::StallDown, 0);  // the client hears nothing on its first connection
  ClientConfig cc;
  cc.port = proxy.port();
  cc.init = init(kShared + "/models/yolo11n.onnx");
  cc.heartbeat_timeout = 600ms;
  cc.backoff_initial = 50ms;
  Seen seen;
  Client client(cc, [&](const v1::Result& r, double) { seen.add(r.frame_id()); });
  client.start();
  std::this_thread::sleep_for(200ms);
  proxy.set_mode(Proxy::Mode::Pass);
  ASSERT_TRUE(client.wait_initialized(60s));
  std::uint64_t id = 1;
  stream(client, seen, id, 3, 120s);
  EXPECT_GE(seen.size(), 3u);
  EXPECT_GE(client.stats().ai_reconnects_total, 1u);
  EXPECT_GE(proxy.connections(), 2);
  seen.expect_monotonic();
  client.stop();
}

TEST(Fault, ConnectionsCutMidStreamReconnectAndContinue) {
  auto server = start_server();
  Proxy proxy(server->port());
  ClientConfig cc;
  cc.port = proxy.port();
  cc.init = init(kShared + "/models/yolo11n.onnx");
  cc.backoff_initial = 50ms;
  Seen seen;
  Client client(cc, [&](const v1::Result& r, double) { seen.add(r.frame_id()); });
  // Every connection is cut after ~2.5 frames' worth of bytes: results keep coming across the cuts.
  proxy.set_mode(Proxy::Mode::Cut, 2 * camera_jpeg().size() + camera_jpeg().size() / 2);
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  std::uint64_t id = 1;
  stream(client, seen, id, 8, 120s);
  EXPECT_GE(seen.size(), 8u);
  EXPECT_GE(client.stats().ai_reconnects_total, 2u);
  EXPECT_GE(client.stats().frames_lost_on_disconnect, 1u);  // the frame cut in half is counted, not resent
  seen.expect_monotonic();
  client.stop();
}

// `aitw serve` as a process, killed with SIGKILL mid-stream and started again on the same port.
TEST(Fault, WorkerKilledMidStreamClientReconnectsNoDuplicates) {
  const std::string aitw = AITW_BINARY;
  const int port = 23000 + getpid() % 20000;
  auto spawn = [&] {
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      setenv("AITW_MODEL_DIR", (kShared + "/models").c_str(), 1);
      const std::string listen = "127.0.0.1:" + std::to_string(port);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 2);
      execl(aitw.c_str(), aitw.c_str(), "serve", "--listen", listen.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  };
  pid_t pid = spawn();
  ClientConfig cc;
  cc.port = static_cast<std::uint16_t>(port);
  cc.init = init("yolo11n");
  cc.backoff_initial = 50ms;
  cc.backoff_max = 500ms;
  Seen seen;
  Client client(cc, [&](const v1::Result& r, double) { seen.add(r.frame_id()); });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  std::uint64_t id = 1;
  stream(client, seen, id, 5, 120s);
  const std::size_t before = seen.size();
  client.submit(frame(id++));  // likely in flight when the worker dies
  std::this_thread::sleep_for(20ms);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  for (int i = 0; i < 5; ++i) {  // offered while the worker is down: latest-wins keeps one
    client.submit(frame(id++));
    std::this_thread::sleep_for(50ms);
  }
  pid = spawn();
  stream(client, seen, id, 5, 120s);
  EXPECT_GE(seen.size(), before + 5);
  EXPECT_GE(client.stats().ai_reconnects_total, 1u);
  EXPECT_GE(client.stats().ai_init_ok_total, 2u);
  seen.expect_monotonic();
  client.stop();
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace aitw::net
