#pragma once
// `aitw serve`: the worker. An orchestrator connects over TCP, sends Init (model + thresholds + frame
// format), gets InitOk and Ready, then sends one Frame per Ready (window 1) and gets a Result then Ready.
// Sessions on the same model and thresholds share one pipeline. Protocol errors get an Error naming the
// cause; fatal ones close only that session.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aitw/kernel/conv.hpp"
#include "aitw/net/framing.hpp"
#include "aitw/net/records.hpp"
#include "aitw/pipeline/latency_histogram.hpp"

namespace aitw::net {

enum class WorkerState { Idle = 0, Loading = 1, Ready = 2, SessionActive = 3 };
const char* to_string(WorkerState s);

// Error codes sent in Error.code.
enum ErrorCode : std::uint32_t {
  kErrMalformed = 1,          // a message that is not a valid Envelope
  kErrUnexpectedMessage = 2,  // a message the server does not accept (InitOk, Result, ...)
  kErrFrameBeforeInit = 3,
  kErrWindowViolation = 4,  // a Frame without a Ready for it (fatal)
  kErrFrameTooLarge = 5,    // length prefix above max_frame_bytes (fatal)
  kErrBadFrame = 6,         // frame bytes do not match the declared format, or do not decode
  kErrModel = 7,            // the model cannot be found or loaded
  kErrTooManySessions = 8,  // fatal
  kErrTimeout = 9,          // heartbeat or mid-message deadline missed (fatal)
  kErrDropped = 10,         // replaced by a newer frame before inference (shared pipeline was busy)
  kErrShuttingDown = 11,
  kErrAuth = 12,  // Init without the shared token, or with a wrong one (fatal)
  // The worker is draining (SIGTERM): an Init is refused, not fatal and retryable elsewhere; the message
  // starts with "draining". Sessions already running get End{reason: "draining"} after their frame.
  kErrDraining = 13,
};

struct ServerConfig {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  std::uint16_t port = 7070;       // 0 = any free port (see Server::port())
  std::uint32_t max_frame_bytes = kDefaultMaxMessageBytes;
  int max_sessions = 16;  // sessions that sent Init; beyond it a new connection gets a fatal Error
  // Connections that have not sent Init yet are capped separately: when `max_pending` wait, the oldest is
  // closed to make room (so idle or half-open connections cannot lock clients out), and each must send
  // Init within `init_timeout`.
  int max_pending = 32;
  std::chrono::milliseconds init_timeout{5000};
  // A message whose first bytes arrived must be complete within this (trickling bytes does not extend it).
  std::chrono::milliseconds message_timeout{5000};
  // A silent peer is dropped after this, and so is one that has not read what it was sent for this long.
  std::chrono::milliseconds heartbeat_timeout{10000};
  // A peer whose unsent replies exceed this is closed (it sends but does not read: its replies would pile up
  // in the worker's memory).
  std::size_t max_queued_bytes = 1u << 20;
  // How long stop() (SIGTERM) waits for the sessions to finish their frame in flight and get End("draining")
  // before it closes the rest.
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};  // models are unloaded after this with no session
  // gRPC's MAX_CONNECTION_AGE: a session older than this (from its first InitOk) plus a random 0-25 % of it
  // is ended gracefully, after the Result of its frame in flight, with End "max_session_age"; the client
  // reconnects at once, so an L4 balancer places it anew (a restarted worker gets its share back). 0 = never.
  std::chrono::milliseconds max_session_age{0};
  int nets = 1, threads = 2;                                      // per loaded model (see the pipeline)
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;  // of aitw's convolutions (--precision)
  // When set, Init.auth_token must equal it (constant-time compare); a mismatch is a fatal Error. Never
  // logged, never in metrics.
  std::string auth_token;
  // Init.model may be a registry/model name (name, name@version) or a path; a path must resolve (after
  // symlinks and `..`) inside one of these directories. Empty: paths are refused, names only.
  std::vector<std::string> model_dirs;
  // The execution history (aitw/history): called on the io thread when a session that sent an Init ends,
  // and when a model is loaded, reloaded, unloaded or fails to load. They must return at once (queue, not
  // write): every session of the worker waits while they run.
  std::function<void(const SessionRecord&)> on_session_end;
  std::function<void(const ModelEvent&)> on_model_event;
};

// Why an Init.model is refused (a path outside every allowed directory), or nullopt when it may be used.
std::optional<std::string> model_refusal(const std::string& model,
                                         const std::vector<std::string>& model_dirs);
// Constant-time token comparison (the time does not depend on where the tokens differ, nor on the length).
bool tokens_equal(const std::string& a, const std::string& b);

struct ServerStats {
  WorkerState state = WorkerState::Idle;
  std::uint64_t connections_active = 0, connections_total = 0;
  std::uint64_t messages_received_total = 0;  // every message read from a peer, heartbeats included
  std::uint64_t frames_received_total = 0, frames_processed_total = 0, results_sent_total = 0;
  std::uint64_t transitions_to_idle_total = 0, models_loaded = 0;
  std::uint64_t model_loads_total = 0;  // loads started (one per model however many sessions ask at once)
  double last_model_load_seconds = 0;
  std::map<std::string, std::uint64_t> errors_by_cause;
  pipeline::LatencyHistogram inference_time_ms;
  // The same forward times by model label (name@version, or the file name for a path), for
  // inference_duration_seconds{model}.
  std::map<std::string, pipeline::LatencyHistogram> inference_time_by_model;
  bool draining = false;                    // stop() (SIGTERM) has begun: /readyz answers 503
  std::uint64_t queued_bytes_max_seen = 0;  // the most any closed session held unsent
};

// What a drain did (Server::drain), also logged.
struct DrainReport {
  int sessions = 0;  // sessions (past Init) when the drain began
  int ended = 0;     // of them, ended with End("draining") (after the Result of their frame in flight)
  int cut = 0;       // still there at the drain timeout: closed
  double seconds = 0;
};

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();  // stop() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving on a background thread. Throws std::runtime_error naming host:port.
  void start();
  std::uint16_t port() const;
  // SIGTERM: stats().draining (/readyz 503) at once, a new Init gets Error kErrDraining (and End), each
  // session gets End("draining") once its frame in flight is answered; returns when none is left, or at
  // `timeout` (those left are closed). New connections are still accepted (so that their Init hears
  // "draining"). Once only: a second call returns an empty report.
  DrainReport drain(std::chrono::milliseconds timeout);
  // Graceful: drain(config.drain_timeout) unless done, then stops accepting and closes. Idempotent.
  void stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aitw::net
