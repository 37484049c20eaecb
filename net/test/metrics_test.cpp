#include "aitw/net/metrics.hpp"

#include <gtest/gtest.h>

#include <httplib.h>

#include <asio.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "aitw/net/client.hpp"
#include "test_server.hpp"

namespace aitw::net {
namespace {

// Parses Prometheus text exposition: "name{labels} value" lines, comments skipped.
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

}  // namespace

// Sums and gauges keep every digit a double has: the default stream precision (6 significant digits) printed
// 1.23457e+06 for ~20 minutes of forwards, and the seconds twin disagreed with the ms total by the rounding
// (seen once under ASan: a 2.4 s forward, 2407.93 vs 2.40794 s).
TEST(Metrics, SumsAndGaugesAreNotRounded) {
  ServerStats s;
  for (int i = 0; i < 40000; ++i) s.inference_time_ms.record(30.123);  // 1,204,920 ms: 20 minutes
  s.inference_time_ms.record(0.001);
  s.inference_time_by_model["m@1"] = s.inference_time_ms;
  s.last_model_load_seconds = 1234.56789;
  const std::string text = render_prometheus(s);
  auto m = parse(text);
  SCOPED_TRACE(text);
  EXPECT_DOUBLE_EQ(m.at("inference_time_ms_sum"), s.inference_time_ms.sum_ms());
  EXPECT_DOUBLE_EQ(m.at("inference_duration_seconds_sum{model=\"m@1\"}"),
                   s.inference_time_ms.sum_ms() / 1000);
  EXPECT_DOUBLE_EQ(m.at("model_load_seconds"), 1234.56789);
  EXPECT_EQ(text.find("e+"), std::string::npos);
  // The bucket bounds read as before.
  EXPECT_NE(text.find("inference_time_ms_bucket{le=\"5\"}"), std::string::npos);
  EXPECT_NE(text.find("inference_duration_seconds_bucket{model=\"m@1\",le=\"0.005\"}"), std::string::npos);
}

TEST(Metrics, EndpointServesTheSpecNamesAndTracksAFrame) {
  const auto server = testing::start_server();
  MetricsEndpoint metrics(*server, "127.0.0.1", 0);
  metrics.start();
  httplib::Client http("127.0.0.1", metrics.port());

  auto before = parse(http.Get("/metrics")->body);
  EXPECT_EQ(before.at("worker_state"), 0);  // IDLE
  EXPECT_EQ(before.at("frames_processed_total"), 0);
  for (const char* name : {"connections_active", "model_load_seconds", "transitions_to_idle_total",
                           "inference_time_ms_count", "frames_dropped_total"})
    EXPECT_TRUE(before.count(name)) << name;
  EXPECT_EQ(http.Get("/healthz")->status, 200);
  // Ready means a model can be served: none loaded yet, so it depends on finding the default one.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::temp_directory_path());  // no ./models, no ../shared
  setenv("AITW_MODEL_DIR", "/nonexistent", 1);
  setenv("XDG_DATA_HOME", "/nonexistent", 1);  // nor ~/.local/share/aitw/models
  EXPECT_EQ(http.Get("/readyz")->status, 503);
  unsetenv("XDG_DATA_HOME");
  setenv("AITW_MODEL_DIR", (std::string(AITW_SHARED_DIR) + "/models").c_str(), 1);
  EXPECT_EQ(http.Get("/readyz")->status, 200);
  unsetenv("AITW_MODEL_DIR");
  std::filesystem::current_path(cwd);

  ClientConfig cc;
  cc.port = server->port();
  cc.init.set_model(std::string(AITW_SHARED_DIR) + "/models/yolo11n.onnx");
  Client client(cc, nullptr);
  client.start();
  ASSERT_TRUE(client.wait_initialized(std::chrono::seconds(10)));
  std::string jpeg;
  {
    std::ifstream f(std::string(AITW_SHARED_DIR) + "/datasets/images/zidane.jpg", std::ios::binary);
    jpeg.assign(std::istreambuf_iterator<char>(f), {});
  }
  v1::Frame f;
  f.set_frame_id(1);
  f.set_format(v1::JPEG);
  f.set_pixels(jpeg);
  client.submit(f);
  ASSERT_TRUE(client.wait_idle(std::chrono::seconds(10)));

  const std::string body = http.Get("/metrics")->body;
  auto after = parse(body);
  SCOPED_TRACE(body);  // on failure, the whole exposition text
  const auto cs = client.stats();
  SCOPED_TRACE("client: sent " + std::to_string(cs.ai_frames_sent_total) + " results " +
               std::to_string(cs.results_total) + " errors " + std::to_string(cs.errors_total));
  EXPECT_EQ(after.at("worker_state"), 3);  // SESSION_ACTIVE
  EXPECT_EQ(after.at("connections_active"), 1);
  EXPECT_EQ(after.at("frames_processed_total"), 1);
  EXPECT_EQ(after.at("inference_time_ms_count"), 1);
  EXPECT_EQ(after.at("inference_time_ms_bucket{le=\"+Inf\"}"), 1);
  EXPECT_GT(after.at("inference_time_ms_sum"), 0);
  EXPECT_GT(after.at("model_load_seconds"), 0);
  // The conventional twin, in seconds, by model (a path: its file name).
  EXPECT_EQ(after.at("inference_duration_seconds_count{model=\"yolo11n.onnx\"}"), 1);
  EXPECT_EQ(after.at("inference_duration_seconds_bucket{model=\"yolo11n.onnx\",le=\"+Inf\"}"), 1);
  EXPECT_NEAR(after.at("inference_duration_seconds_sum{model=\"yolo11n.onnx\"}") * 1000,
              after.at("inference_time_ms_sum"), 1e-2);
  EXPECT_EQ(after.at("worker_draining"), 0);

  // promtool (Prometheus' own linter) finds nothing but the seed's inference_time_ms name.
  const std::string promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) {
    GTEST_SKIP() << promtool << " is absent (scripts/install-deps.sh installs the prometheus package)";
  }
  const auto file = std::filesystem::temp_directory_path() / ("aitw_metrics_" + std::to_string(getpid()));
  std::ofstream(file) << body;
  FILE* p = popen((promtool + " check metrics < " + file.string() + " 2>&1").c_str(), "r");
  std::string lint;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) lint.append(buf, n);
  pclose(p);
  std::filesystem::remove(file);
  std::istringstream lines(lint);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) {
      EXPECT_EQ(line.rfind("inference_time_ms ", 0), 0u) << line;
    }
  }
  client.stop();
  metrics.stop();
  server->stop();
}

// Idle and half-sent connections (past the connection cap) do not keep /healthz from answering, and
// /readyz says 503 "draining" from the moment the drain begins.
TEST(Metrics, HealthzAnswersThroughIdleAndHalfSentConnectionsAndReadyzSaysDraining) {
  const auto server = testing::start_server();
  MetricsEndpoint metrics(*server, "127.0.0.1", 0);
  metrics.start();
  asio::io_context io;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> hostile;
  for (int i = 0; i < 300; ++i) {
    hostile.push_back(std::make_unique<asio::ip::tcp::socket>(io));
    hostile.back()->connect({asio::ip::make_address("127.0.0.1"), metrics.port()});
    if (i % 2)
      asio::write(*hostile.back(), asio::buffer(std::string("GET /metrics HTTP/1.1\r\nHost: x\r\n")));
  }
  httplib::Client http("127.0.0.1", metrics.port());
  http.set_connection_timeout(30);
  http.set_read_timeout(30);  // generous: the point is that it answers while they are open
  const auto health = http.Get("/healthz");
  ASSERT_TRUE(health) << "no answer: " << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  // The newest of them are still open (the oldest were closed at the cap): one completes its request now.
  asio::write(*hostile.back(), asio::buffer(std::string("\r\n")));
  asio::streambuf reply;
  asio::error_code ec;
  asio::read(*hostile.back(), reply, ec);  // to the close (Connection: close)
  const std::string text{asio::buffers_begin(reply.data()), asio::buffers_end(reply.data())};
  EXPECT_EQ(text.rfind("HTTP/1.1 200 OK", 0), 0u) << text;
  EXPECT_NE(text.find("worker_state"), std::string::npos);

  EXPECT_EQ(http.Get("/nope")->status, 404);
  EXPECT_EQ(http.Post("/metrics", "", "text/plain")->status, 405);
  server->drain(std::chrono::seconds(10));
  const auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "draining\n");
  EXPECT_EQ(parse(http.Get("/metrics")->body).at("worker_draining"), 1);
  metrics.stop();
  server->stop();
}

}  // namespace aitw::net
