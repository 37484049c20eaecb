#pragma once
// `aitw serve --metrics HOST:PORT`: Prometheus text metrics at GET /metrics (the spec's names:
// worker_state, connections_active, frames_processed_total, inference_time_ms, model_load_seconds,
// transitions_to_idle_total, plus drops and errors by cause, worker_draining, and the conventional
// inference_duration_seconds histogram with a `model` label), GET /healthz (the process answers) and
// GET /readyz (200 when a model can be served; 503 "draining" from the moment SIGTERM begins the drain).
// Served from its own Asio loop: idle or half-sent connections (any number) do not keep it from answering.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "aitw/net/server.hpp"

namespace aitw::net {

std::string render_prometheus(const ServerStats& stats);

class MetricsEndpoint {
 public:
  MetricsEndpoint(const Server& server, std::string host, std::uint16_t port);
  ~MetricsEndpoint();
  // More Prometheus text appended to /metrics (e.g. the history's history_spooled); before start().
  void add_metrics(std::function<std::string()> text);
  void start();  // throws std::runtime_error naming host:port when it cannot listen
  std::uint16_t port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aitw::net
