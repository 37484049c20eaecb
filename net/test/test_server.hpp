#pragma once
// The Server the net suites start: an ephemeral loopback port (port() tells which), and the deadlines a
// test is not about kept far from a model load that a sanitizer or a busy machine makes slow. A test about
// a deadline sets it; one about model folders sets model_dirs.
#include <chrono>
#include <filesystem>
#include <memory>

#include "aitw/net/server.hpp"
#include "protocol_peer.hpp"

namespace aitw::net::testing {

inline ServerConfig test_server_config(ServerConfig cfg = {}) {
  cfg.port = 0;
  // Peers do not send heartbeats while they wait for InitOk, nor their Init while another's handshake
  // (a model load) is under way.
  if (cfg.heartbeat_timeout == ServerConfig{}.heartbeat_timeout)
    cfg.heartbeat_timeout = std::chrono::minutes(2);
  if (cfg.init_timeout == ServerConfig{}.init_timeout) cfg.init_timeout = std::chrono::minutes(2);
  if (cfg.model_dirs.empty())  // Init.model paths: the shared models and temporary test files
    cfg.model_dirs = {kShared + "/models", std::filesystem::temp_directory_path().string()};
  return cfg;
}

inline std::unique_ptr<Server> start_server(ServerConfig cfg = {}) {
  auto s = std::make_unique<Server>(test_server_config(std::move(cfg)));
  s->start();
  return s;
}

}  // namespace aitw::net::testing
