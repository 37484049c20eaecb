// The worker over real loopback sockets: a raw peer for protocol-level cases and the client library.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <asio.hpp>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <thread>

#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "protocol_peer.hpp"
#include "test_server.hpp"

namespace aitw::net {
namespace {

using namespace testing;  // protocol_peer.hpp, test_server.hpp
using namespace std::chrono_literals;

}  // namespace

TEST(Server, HandshakeFrameResultReady) {
  auto server = start_server();
  Peer p(server->port());
  const auto ok = p.handshake();
  EXPECT_EQ(ok.model_id().size(), 64u);
  EXPECT_EQ(ok.class_names_size(), 80);
  EXPECT_EQ(ok.input_height(), 480u);
  EXPECT_EQ(ok.input_width(), 640u);
  EXPECT_EQ(ok.max_frame_bytes(), kDefaultMaxMessageBytes);
  EXPECT_EQ(ok.providers(0), "CPU");
  EXPECT_EQ(server->stats().state, WorkerState::SessionActive);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    p.send(frame_msg(id));
    auto r = p.recv();
    ASSERT_TRUE(r && r->has_result()) << (r ? message_name(*r) : "nothing");
    EXPECT_EQ(r->result().frame_id(), id);
    EXPECT_EQ(r->result().ts_mono_ns(), 1000 + static_cast<std::int64_t>(id));  // echoed
    EXPECT_GE(r->result().detections_size(), 3);
    EXPECT_GT(r->result().times().infer_ms(), 0);
    auto ready = p.recv();
    ASSERT_TRUE(ready && ready->has_ready());
  }
  EXPECT_EQ(server->stats().frames_processed_total, 3u);
}

TEST(Server, SecondFrameWithoutReadyIsAFatalWindowViolation) {
  auto server = start_server();
  Peer p(server->port());
  p.handshake();
  p.send_bytes(encode(frame_msg(1)) + encode(frame_msg(2)));
  std::optional<v1::Envelope> e;
  do e = p.recv();
  while (e && !e->has_error());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error().code(), kErrWindowViolation);
  EXPECT_TRUE(e->error().fatal());
  EXPECT_TRUE(p.closed_by_server());
  Peer other(server->port());  // the server carries on
  other.handshake();
}

TEST(Server, OversizeLengthPrefixIsRejectedAndClosed) {
  ServerConfig cfg;
  cfg.max_frame_bytes = 1 << 20;
  auto server = start_server(cfg);
  Peer p(server->port());
  p.send_bytes(std::string("\xff\xff\xff\x7f", 4));
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrFrameTooLarge);
  EXPECT_NE(e->error().message().find("2147483647"), std::string::npos) << e->error().message();
  EXPECT_TRUE(p.closed_by_server());
  EXPECT_EQ(server->stats().errors_by_cause.at("frame_too_large"), 1u);
}

TEST(Server, GarbageBytesGetAnErrorAndTheServerCarriesOn) {
  auto server = start_server();
  {
    Peer p(server->port());
    std::mt19937 rng(3);
    std::string junk(4096, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    p.send_bytes(junk);
    auto e = p.recv();
    ASSERT_TRUE(e && e->has_error());
  }
  Peer ok(server->port());
  ok.handshake();
}

TEST(Server, FrameBeforeInitIsANonFatalError) {
  auto server = start_server();
  Peer p(server->port());
  p.send(frame_msg(1));
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrFrameBeforeInit);
  EXPECT_FALSE(e->error().fatal());
  p.handshake();  // the session goes on
}

TEST(Server, BadFrameBytesGetAnErrorThenReady) {
  auto server = start_server();
  Peer p(server->port());
  p.handshake();
  p.send(frame_msg(1, "not a jpeg at all"));
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrBadFrame);
  EXPECT_NE(e->error().message().find("does not decode"), std::string::npos) << e->error().message();
  auto ready = p.recv();
  ASSERT_TRUE(ready && ready->has_ready());
  p.send(frame_msg(2));
  auto r = p.recv();
  ASSERT_TRUE(r && r->has_result());
}

TEST(Server, UnknownModelIsAnErrorNamingIt) {
  auto server = start_server();
  Peer p(server->port());
  p.send(init_msg("no-such-model"));
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrModel);
  EXPECT_NE(e->error().message().find("no-such-model"), std::string::npos);
  p.handshake();
}

TEST(Server, DisconnectMidFrameLeavesTheServerServing) {
  auto server = start_server();
  {
    Peer p(server->port());
    p.handshake();
    const std::string wire = encode(frame_msg(1));
    p.send_bytes(wire.substr(0, wire.size() / 2));
  }  // closed with half a frame sent
  Peer ok(server->port());
  ok.handshake();
  ok.send(frame_msg(1));
  auto r = ok.recv();
  ASSERT_TRUE(r && r->has_result());
}

TEST(Server, SilentPeerIsDroppedAfterTheHeartbeatTimeout) {
  ServerConfig cfg;
  cfg.heartbeat_timeout = 300ms;
  cfg.message_timeout = 60s;  // so only the heartbeat deadline can cut it within the peer's 5 s wait
  cfg.init_timeout = 60s;
  auto server = start_server(cfg);
  Peer p(server->port());
  p.send_bytes(encode(init_msg()).substr(0, 10));  // stalls mid-message, sends nothing more
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrTimeout);
  EXPECT_NE(e->error().message().find("mid-message"), std::string::npos);
  EXPECT_TRUE(p.closed_by_server());
}

TEST(Server, MaxSessionsIsEnforced) {
  ServerConfig cfg;
  cfg.max_sessions = 1;
  auto server = start_server(cfg);
  Peer first(server->port());
  first.handshake();
  Peer second(server->port());
  auto e = second.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrTooManySessions);
  EXPECT_TRUE(second.closed_by_server());
}

TEST(Server, TwoSessionsOnDifferentModels) {
  auto server = start_server();
  Peer a(server->port()), b(server->port());
  const auto ok_a = a.handshake(kYolo11);
  const auto ok_b = b.handshake(kYolov8);
  EXPECT_NE(ok_a.model_id(), ok_b.model_id());
  EXPECT_EQ(server->stats().models_loaded, 2u);
  a.send(frame_msg(1));
  b.send(frame_msg(1));
  auto ra = a.recv(), rb = b.recv();
  ASSERT_TRUE(ra && ra->has_result());
  ASSERT_TRUE(rb && rb->has_result());
  EXPECT_GE(ra->result().detections_size(), 3);
  EXPECT_GE(rb->result().detections_size(), 3);
}

TEST(Server, UnloadsModelsWhenIdleAndLoadsAgain) {
  ServerConfig cfg;
  cfg.idle_timeout = 300ms;
  auto server = start_server(cfg);
  {
    Peer p(server->port());
    p.handshake();
    EXPECT_EQ(server->stats().state, WorkerState::SessionActive);
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server->stats().state != WorkerState::Idle && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server->stats().state, WorkerState::Idle);
  EXPECT_EQ(server->stats().transitions_to_idle_total, 1u);
  EXPECT_EQ(server->stats().models_loaded, 0u);
  Peer again(server->port());
  again.handshake();
}

TEST(Server, StopAnswersTheFrameInFlightThenEnds) {
  auto server = start_server();
  Peer p(server->port());
  p.handshake();
  p.send(frame_msg(7));
  // Stop once the server has the frame (a counter, not a sleep: under a sanitizer 5 ms guarantee nothing).
  for (int i = 0; i < 60000 && server->stats().frames_received_total == 0; ++i)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(server->stats().frames_received_total, 1u);
  std::thread stopper([&] { server->stop(); });
  auto r = p.recv();
  ASSERT_TRUE(r && r->has_result());
  EXPECT_EQ(r->result().frame_id(), 7u);
  auto end = p.recv();
  ASSERT_TRUE(end && end->has_end());
  stopper.join();
}

// A refused Init ends wait_initialized at once, whatever its timeout: with an hour to wait, the test would
// hang (and time out in ctest) if the refusal only ended it at the deadline. No clock is read.
TEST(Client, RefusedInitEndsTheWait) {
  ServerConfig cfg;
  cfg.auth_token = "edge-s3cret-token";
  auto server = start_server(cfg);
  ClientConfig cc;
  cc.port = server->port();
  cc.init = init_msg().init();
  cc.init.set_auth_token("wrong");
  std::atomic<int> errors{0};
  Client client(
      cc, [](const v1::Result&, double) {}, [&](const v1::Error&) { ++errors; });
  client.start();
  EXPECT_FALSE(client.wait_initialized(std::chrono::hours(1)));
  EXPECT_GE(errors.load(), 1);
  EXPECT_EQ(client.stats().ai_init_ok_total, 0u);
  client.stop();
}

TEST(Client, LatestWinsAndResults) {
  auto server = start_server();
  ClientConfig cc;
  cc.port = server->port();
  cc.init = init_msg().init();
  std::atomic<int> results{0};
  Client client(cc, [&](const v1::Result&, double) { ++results; });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  for (std::uint64_t id = 1; id <= 10; ++id)
    client.submit(frame_msg(id).frame());  // far faster than inference
  ASSERT_TRUE(client.wait_idle(60s));
  const auto s = client.stats();
  EXPECT_EQ(s.ai_init_ok_total, 1u);
  EXPECT_EQ(s.ai_frames_sent_total + s.ai_drops_latestwins_total, 10u);
  EXPECT_GE(s.ai_drops_latestwins_total, 5u);
  EXPECT_EQ(static_cast<std::uint64_t>(results.load()), s.ai_frames_sent_total);
  EXPECT_GT(s.ai_detections_total, 0u);
  EXPECT_EQ(s.ai_result_latency_ms.count(), s.results_total);
}

TEST(Client, ReconnectsAndReInitsAfterAServerRestart) {
  auto server = start_server();
  const std::uint16_t port = server->port();
  ClientConfig cc;
  cc.port = port;
  cc.init = init_msg().init();
  cc.backoff_initial = 50ms;
  std::atomic<int> results{0};
  Client client(cc, [&](const v1::Result&, double) { ++results; });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  client.submit(frame_msg(1).frame());
  ASSERT_TRUE(client.wait_idle(60s));
  server->stop();
  server.reset();
  ServerConfig again;
  again.port = port;  // same port: the client's address
  again.model_dirs = {kShared + "/models"};
  again.heartbeat_timeout = std::chrono::minutes(2);  // as start_server's: the reload may be sanitizer-slow
  again.init_timeout = std::chrono::minutes(2);
  server = std::make_unique<Server>(again);
  server->start();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (client.stats().ai_init_ok_total < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_GE(client.stats().ai_reconnects_total, 1u);
  EXPECT_EQ(client.stats().ai_init_ok_total, 2u);
  client.submit(frame_msg(2).frame());
  ASSERT_TRUE(client.wait_idle(60s));
  EXPECT_EQ(results.load(), 2);
}

}  // namespace aitw::net

namespace aitw::net {

TEST(Server, HotReloadToABrokenModelKeepsTheOldOne) {
  const auto broken =
      std::filesystem::temp_directory_path() / ("aitw_broken_" + std::to_string(getpid()) + ".onnx");
  std::ofstream(broken) << "this is not a model";
  auto server = start_server();
  Peer p(server->port());
  const auto first = p.handshake(kYolo11);
  p.send(init_msg(broken.string()));  // hot reload to a broken model
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrModel);
  EXPECT_NE(e->error().message().find(broken.string()), std::string::npos) << e->error().message();
  EXPECT_FALSE(e->error().fatal());
  p.send(frame_msg(1));  // the old model still serves (the Ready from the first Init is still valid)
  auto r = p.recv();
  ASSERT_TRUE(r && r->has_result()) << (r ? message_name(*r) : "nothing");
  EXPECT_GE(r->result().detections_size(), 3);
  ASSERT_TRUE(p.recv()->has_ready());
  const auto second = p.handshake(kYolov8);  // and a good reload switches models
  EXPECT_NE(second.model_id(), first.model_id());
  std::filesystem::remove(broken);
}

TEST(Server, ModelFileTruncatedOrReplacedOnDiskWhileServing) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("aitw_models_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string model = (dir / "det.onnx").string();
  fs::copy_file(kYolo11, model);
  ServerConfig cfg;
  cfg.model_dirs = {dir.string()};
  auto server = start_server(cfg);
  Peer p(server->port());
  const auto first = p.handshake(model);
  auto serves = [&](std::uint64_t id) {
    p.send(frame_msg(id));
    auto r = p.recv();
    EXPECT_TRUE(r && r->has_result()) << (r ? message_name(*r) : "nothing");
    if (r && r->has_result()) {
      EXPECT_GE(r->result().detections_size(), 3);
    }
    auto ready = p.recv();
    EXPECT_TRUE(ready && ready->has_ready());
  };
  serves(1);

  // Truncated in place (a copy interrupted half way): a reload fails with a clear error, the old model
  // serves.
  const auto size = fs::file_size(model);
  fs::resize_file(model, size / 2);
  p.send(init_msg(model));
  auto e = p.recv();
  ASSERT_TRUE(e && e->has_error()) << (e ? message_name(*e) : "nothing");
  EXPECT_EQ(e->error().code(), kErrModel);
  EXPECT_FALSE(e->error().fatal());
  EXPECT_NE(e->error().message().find(model), std::string::npos) << e->error().message();
  serves(2);
  {  // a new session cannot start on the broken file either, and is told why
    Peer q(server->port());
    q.send(init_msg(model));
    auto qe = q.recv();
    ASSERT_TRUE(qe && qe->has_error()) << (qe ? message_name(*qe) : "nothing");
    EXPECT_EQ(qe->error().code(), kErrModel);
  }
  serves(3);

  // Replaced atomically by another model: the next Init loads the new file; the old copy is unloaded once
  // no session uses it.
  fs::copy_file(kYolov8, model + ".tmp");
  fs::rename(model + ".tmp", model);
  const auto second = p.handshake(model);
  EXPECT_NE(second.model_id(), first.model_id());
  serves(4);
  EXPECT_EQ(server->stats().models_loaded, 1u);
  const auto again = p.handshake(model);  // unchanged since: the loaded copy is reused
  EXPECT_EQ(again.model_id(), second.model_id());
  EXPECT_EQ(server->stats().models_loaded, 1u);
  fs::remove_all(dir);
}

TEST(Server, ConcurrentInitsOfOneModelLoadItOnce) {
  auto server = start_server();
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 6; ++i) peers.push_back(std::make_unique<Peer>(server->port(), 120));  // a model load
  for (auto& p : peers) p->send(init_msg());  // all before the first load can finish
  std::set<std::string> ids;
  for (auto& p : peers) {
    auto ok = p->recv();
    ASSERT_TRUE(ok && ok->has_init_ok()) << (ok ? message_name(*ok) : "nothing");
    ids.insert(ok->init_ok().model_id());
    ASSERT_TRUE(p->recv()->has_ready());
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(server->stats().model_loads_total, 1u);
  EXPECT_EQ(server->stats().models_loaded, 1u);
  for (std::uint64_t i = 0; i < peers.size(); ++i) {  // and all of them are served by it
    peers[i]->send(frame_msg(i + 1));
    auto r = peers[i]->recv();
    ASSERT_TRUE(r && r->has_result()) << (r ? message_name(*r) : "nothing");
    EXPECT_EQ(r->result().frame_id(), i + 1);
  }
}

TEST(Server, SessionsWithOtherThresholdsShareTheModelAndKeepTheirOwn) {
  auto server = start_server();
  Peer all(server->port()), buses(server->port()), bad(server->port());
  all.handshake();
  auto only_bus = init_msg();
  only_bus.mutable_init()->mutable_thresholds()->add_classes(5);  // COCO "bus"
  only_bus.mutable_init()->mutable_thresholds()->set_conf(0.3f);
  buses.send(only_bus);
  ASSERT_TRUE(buses.recv()->has_init_ok());
  ASSERT_TRUE(buses.recv()->has_ready());
  auto out_of_range = init_msg();
  out_of_range.mutable_init()->mutable_thresholds()->add_classes(80);
  bad.send(out_of_range);
  auto e = bad.recv();
  ASSERT_TRUE(e && e->has_error()) << (e ? message_name(*e) : "nothing");
  EXPECT_EQ(e->error().code(), kErrModel);
  EXPECT_FALSE(e->error().fatal());
  EXPECT_NE(e->error().message().find("class id 80 out of range"), std::string::npos) << e->error().message();
  EXPECT_EQ(server->stats().model_loads_total, 1u);  // one network for all three
  EXPECT_EQ(server->stats().models_loaded, 1u);
  all.send(frame_msg(1));
  buses.send(frame_msg(1));
  auto ra = all.recv(), rb = buses.recv();
  ASSERT_TRUE(ra && ra->has_result() && rb && rb->has_result());
  std::multiset<std::uint32_t> ca, cb;
  for (const auto& d : ra->result().detections()) ca.insert(d.class_id());
  for (const auto& d : rb->result().detections()) {
    cb.insert(d.class_id());
    EXPECT_GE(d.score(), 0.3f);
  }
  EXPECT_GE(ca.count(0), 3u);  // persons for the session without a filter
  EXPECT_GE(ca.count(5), 1u);
  EXPECT_EQ(cb.count(5), cb.size());  // buses only for the other
  EXPECT_EQ(cb.size(), ca.count(5));
}

TEST(Server, AuthTokenIsRequiredWhenConfigured) {
  ServerConfig cfg;
  cfg.auth_token = "edge-s3cret-token";
  auto server = start_server(cfg);
  for (const std::string token : {"", "edge-s3cret-tokeN", "edge-s3cret-token-and-more"}) {
    Peer p(server->port());
    auto init = init_msg();
    init.mutable_init()->set_auth_token(token);
    p.send(init);
    auto e = p.recv();
    ASSERT_TRUE(e && e->has_error()) << token;
    EXPECT_EQ(e->error().code(), kErrAuth);
    EXPECT_TRUE(e->error().fatal());
    EXPECT_EQ(e->error().message().find("s3cret"), std::string::npos);  // the token is never echoed
    EXPECT_TRUE(p.closed_by_server());
  }
  EXPECT_EQ(server->stats().errors_by_cause.at("auth_failed"), 3u);
  Peer ok(server->port(), 120);  // its InitOk follows the first model load
  auto init = init_msg();
  init.mutable_init()->set_auth_token("edge-s3cret-token");
  ok.send(init);
  auto r = ok.recv();
  ASSERT_TRUE(r && r->has_init_ok()) << (r ? message_name(*r) : "nothing");
}

TEST(Server, TokensCompareWholly) {
  EXPECT_TRUE(tokens_equal("abc", "abc"));
  EXPECT_FALSE(tokens_equal("abc", "abd"));
  EXPECT_FALSE(tokens_equal("abc", "abcd"));
  EXPECT_FALSE(tokens_equal("", "a"));
  EXPECT_TRUE(tokens_equal("", ""));
}

TEST(Server, InitModelPathsMustStayInsideTheModelDirectories) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("aitw_modeldir_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "models");
  std::ofstream(root / "models" / "broken.onnx") << "not a model";
  fs::create_symlink("/etc/passwd", root / "models" / "evil.onnx");
  std::ofstream(root / "secret.onnx") << "not for clients";
  fs::create_symlink(root / "secret.onnx", root / "models" / "outside.onnx");
  fs::create_symlink(kYolo11, root / "models" / "other-allowed.onnx");  // into another allowed directory
  ServerConfig cfg;
  cfg.model_dirs = {(root / "models").string(), kShared + "/models"};
  auto server = start_server(cfg);
  Peer p(server->port());
  auto refused = [&](const std::string& model, const std::string& needle) {
    p.send(init_msg(model));
    auto e = p.recv();
    ASSERT_TRUE(e && e->has_error()) << model;
    EXPECT_EQ(e->error().code(), kErrModel) << model;
    EXPECT_FALSE(e->error().fatal());
    EXPECT_NE(e->error().message().find(needle), std::string::npos) << model << ": " << e->error().message();
  };
  refused("/etc/passwd", "outside the allowed model directories");
  refused((root / "models" / ".." / "secret.onnx").string(), "outside");
  refused((root / "models" / "evil.onnx").string(), "outside");  // symlink out
  refused((root / "models" / "outside.onnx").string(), "outside");
  refused((root / "models").string(), "outside");                      // the directory itself
  refused((root / "models" / "broken.onnx").string(), "broken.onnx");  // allowed, but not a model
  EXPECT_EQ(server->stats().errors_by_cause.at("model_not_allowed"), 5u);
  p.handshake(kShared + "/models/yolo11n.onnx");                   // inside an allowed directory
  p.handshake((root / "models" / "other-allowed.onnx").string());  // a symlink that stays inside them
  // Without any allowed directory, paths are refused and names still work.
  ServerConfig names_only;
  names_only.model_dirs = {"/nonexistent-aitw-dir"};
  auto strict = start_server(names_only);
  Peer q(strict->port());
  q.send(init_msg(kYolo11));
  auto e = q.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_NE(e->error().message().find("outside"), std::string::npos) << e->error().message();
  EXPECT_NE(model_refusal(kYolo11, {}).value_or("").find("accepts model names only"), std::string::npos);
  EXPECT_NE(model_refusal(kYolo11, {}).value_or("").find("--model-dir"), std::string::npos);
  EXPECT_FALSE(model_refusal("yolo11n", {}));
  EXPECT_FALSE(model_refusal("yolo11n@3", {}));
  // NAME.onnx is a name too: looked up only inside the model folders, never in the working directory.
  EXPECT_FALSE(model_refusal("yolo11n.onnx", {}));
  EXPECT_TRUE(model_refusal("./yolo11n.onnx", {}));
  EXPECT_TRUE(model_refusal("../yolo11n", {}));
  fs::remove_all(root);
}

// A peer trickling one byte at a time keeps the heartbeat fresh but not the message deadline.
TEST(Server, TricklingPeerIsCutByTheMessageDeadline) {
  ServerConfig cfg;
  cfg.message_timeout = 400ms;
  auto server = start_server(cfg);
  Peer p(server->port());
  const std::string bytes = encode(init_msg());
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<v1::Envelope> e;
  for (std::size_t i = 0; i < bytes.size() && std::chrono::steady_clock::now() - t0 < 3s; ++i) {
    asio::error_code ec;
    asio::write(p.s, asio::buffer(bytes.data() + i, 1), ec);
    if (ec) break;
    std::this_thread::sleep_for(100ms);
    if (p.s.available(ec) > 0) {
      e = p.recv();
      break;
    }
  }
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrTimeout);
  EXPECT_NE(e->error().message().find("incomplete for 400 ms"), std::string::npos) << e->error().message();
}

TEST(Server, ConnectionWithoutInitIsCutAfterTheInitTimeout) {
  ServerConfig cfg;
  cfg.init_timeout = 300ms;
  cfg.heartbeat_timeout = 60s;  // only the Init deadline can cut it within the peer's 5 s wait
  auto server = start_server(cfg);
  Peer p(server->port());
  auto e = p.recv();  // heartbeats are skipped
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrTimeout);
  EXPECT_NE(e->error().message().find("no Init within 300 ms"), std::string::npos);
  EXPECT_TRUE(p.closed_by_server());
}

// 200 connections send half a length prefix and hang. They are pending (no Init): at most max_pending of
// them are kept (the oldest are closed to make room), none counts against max_sessions, and a real client
// connecting afterwards is served. The flood's own deadlines are set far beyond the client's wait, so only
// eviction can make room for it: the property holds however slow the machine (or a sanitizer) is, with no
// wall-clock bound. A session beyond max_sessions still gets a clear Error.
TEST(Server, HalfOpenFloodDoesNotLockClientsOut) {
  ServerConfig cfg;
  cfg.max_sessions = 2;
  cfg.max_pending = 16;
  cfg.init_timeout = 120s;
  cfg.message_timeout = 120s;
  cfg.heartbeat_timeout = 120s;
  auto server = start_server(cfg);
  std::vector<std::unique_ptr<Peer>> flood;
  for (int i = 0; i < 200; ++i) {
    flood.push_back(std::make_unique<Peer>(server->port()));
    flood.back()->send_bytes(std::string("\x20\x00", 2));
  }
  std::this_thread::sleep_for(300ms);
  ClientConfig cc;
  cc.port = server->port();
  cc.init = init_msg().init();
  std::atomic<int> results{0};
  Client client(cc, [&](const v1::Result&, double) { ++results; });
  client.start();
  ASSERT_TRUE(client.wait_initialized(30s));                        // well before any flood deadline (120 s)
  EXPECT_EQ(server->stats().errors_by_cause.count("timeout"), 0u);  // no flood peer was freed by a deadline
  for (std::uint64_t id = 1; id <= 3; ++id) {
    client.submit(frame_msg(id).frame());
    ASSERT_TRUE(client.wait_idle(60s));
  }
  EXPECT_EQ(results.load(), 3);
  EXPECT_GE(server->stats().errors_by_cause.at("pending_evicted"), 180u);
  Peer second(server->port());
  second.handshake();
  Peer third(server->port());  // two sessions (the client and `second`): the third is refused
  auto e = third.recv();
  ASSERT_TRUE(e && e->has_error());
  EXPECT_EQ(e->error().code(), kErrTooManySessions);
  EXPECT_NE(e->error().message().find("limit of 2 sessions"), std::string::npos);
  client.stop();
}

}  // namespace aitw::net
