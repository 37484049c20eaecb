#pragma once
// `aitw health`: a protocol-level probe of a worker, for container HEALTHCHECKs and scripts (as the seed's
// healthcheck.py was): connect, send a Heartbeat, wait for the worker's echo of it. The worker answers
// Heartbeats in any session state, before Init too, so the probe loads no model and holds no session.
#include <chrono>
#include <cstdint>
#include <string>

namespace aitw::net {

struct HealthResult {
  bool ok = false;
  std::string reason;  // why not: "connection refused", "timeout after 2000 ms waiting for ...", ...
  double round_trip_ms = 0;
};

// Never throws: every failure is a result naming its cause.
HealthResult probe_health(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace aitw::net
