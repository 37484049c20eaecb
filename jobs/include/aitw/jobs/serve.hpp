#pragma once
// `aitw serve`: the worker (aitw/net/server.hpp) and its HTTP metrics endpoint, run until SIGTERM/SIGINT.
#include <optional>
#include <string>

#include "aitw/base/host_port.hpp"
#include "aitw/history/serve_history.hpp"
#include "aitw/net/server.hpp"

namespace aitw::jobs {

struct ServeJob {
  net::ServerConfig server;              // listen address, limits, timeouts, allowed model directories
  std::string auth_token_file;           // empty = no token; else Init.auth_token must equal its first line
  std::optional<HostPort> metrics;       // HTTP /metrics (Prometheus), /healthz, /readyz; nullopt = none
  history::ServeHistoryOptions history;  // --history, --worker-id, --history-retention
};

// Blocks SIGINT and SIGTERM in every thread and waits for one; then drains (net::Server::drain: /readyz 503,
// sessions end after their frame in flight, bounded by server.drain_timeout) and returns 0. 2 when the
// worker cannot start (address in use, unreadable token).
int run_serve(ServeJob job);

}  // namespace aitw::jobs
