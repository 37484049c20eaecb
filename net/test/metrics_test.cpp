#include "aitw/net/metrics.hpp"

#include <gtest/gtest.h>

#include <httplib.h>

#include <asio.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "aitw/net/client.hpp"

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

TEST(Metrics, EndpointServesTheSpecNamesAndTracksAFrame) {
  ServerConfig sc;
  sc.port = 0;
  sc.model_dirs = {std::string(AITW_SHARED_DIR) + "/models"};
  Server server(sc);
  server.start();
  MetricsEndpoint metrics(server, "127.0.0.1", 0);
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
  cc.port = server.port();
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
  client.stop();
  metrics.stop();
  server.stop();
}

}  // namespace aitw::net
