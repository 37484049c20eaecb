#pragma once
// The C++ client of the worker protocol: connect, Init, then submit() frames that never block the caller.
// Window 1: while a frame is in flight the newest submitted frame waits and replaces any older waiting
// one (latest wins, counted as a drop). Reconnects with exponential backoff and jitter, re-Inits
// automatically, and drops a silent server after the heartbeat timeout.
//
// Endpoint lists: with several workers the client starts on a random one (clients spread without a
// balancer) and moves to the next on a connect failure or disconnect, each endpoint with its own backoff
// (a dead worker is retried ever less often; a healthy next one is tried at once). A worker that leaves
// gracefully (Error kErrDraining on Init, or End "draining" / "max_session_age" after the Result of the
// frame in flight) is left at once, without backoff: only that frame's successor waits for the re-Init.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aitw.pb.h"
#include "aitw/base/host_port.hpp"
#include "aitw/pipeline/latency_histogram.hpp"

namespace aitw::net {

struct ClientConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7070;
  // When not empty, these and not host:port: the client starts on a random one and moves on in order.
  std::vector<HostPort> endpoints;
  bool random_start = true;  // false: the first endpoint first (a preferred primary; tests)
  v1::Init init;             // model, thresholds, frame format
  std::chrono::milliseconds heartbeat_timeout{10000};
  std::chrono::milliseconds backoff_initial{100}, backoff_max{5000};
};

// The spec's client metrics.
struct ClientStats {
  std::uint64_t ai_init_ok_total = 0;
  std::uint64_t ai_reconnects_total = 0;
  std::uint64_t ai_frames_sent_total = 0;
  std::uint64_t ai_drops_latestwins_total = 0;
  std::uint64_t ai_detections_total = 0;
  std::uint64_t results_total = 0, errors_total = 0;
  std::uint64_t frames_lost_on_disconnect = 0;
  // Graceful leaves: a worker answered Init with kErrDraining, or ended the session with End "draining" /
  // "max_session_age"; the client moved on at once.
  std::uint64_t graceful_moves_total = 0;
  std::map<std::string, std::uint64_t> results_by_endpoint;  // "host:port" -> Results received there
  bool ai_frame_inflight = false;
  pipeline::LatencyHistogram ai_result_latency_ms;  // submit (ts_mono_ns) -> Result
};

class Client {
 public:
  using ResultCallback = std::function<void(const v1::Result&, double latency_ms)>;
  using ErrorCallback = std::function<void(const v1::Error&)>;

  Client(ClientConfig config, ResultCallback on_result, ErrorCallback on_error = {});
  ~Client();  // stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();  // connects in the background; keeps reconnecting until stop()
  // Blocks until an InitOk arrived (true), or the worker refused the last Init (model or auth error), or
  // the timeout passed (false).
  bool wait_initialized(std::chrono::milliseconds timeout);
  // Never blocks. frame.ts_mono_ns = 0 is stamped with the steady clock now.
  void submit(v1::Frame frame);
  // Blocks until no frame is waiting or in flight (true) or the timeout passed (false).
  bool wait_idle(std::chrono::milliseconds timeout);
  void stop();  // sends End and closes; idempotent

  ClientStats stats() const;
  std::string endpoint() const;  // "host:port" of the current (or last tried) endpoint
  v1::InitOk init_ok() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aitw::net
