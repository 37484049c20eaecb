#pragma once
// What the worker reports when a session ends and when a model is loaded, reloaded, unloaded or fails to
// load (ServerConfig::on_session_end / on_model_event), for the execution history (aitw/history). Times are
// wall-clock (system_clock) milliseconds since the Unix epoch: they are read by people and compared across
// machines, unlike the monotonic timestamps of the protocol.
#include <cstdint>
#include <string>

namespace aitw::net {

struct SessionRecord {
  std::uint64_t session = 0;  // the server's session number (unique within one run of the worker)
  std::string client_id;      // Init.client_id (empty when the session never sent an Init)
  std::string peer;           // ip:port
  std::string model;          // the reference as the client asked for it (Init.model, or the default)
  std::string model_sha256;   // of the model file served (InitOk.model_id); empty when none was loaded
  std::int64_t started_ms = 0, ended_ms = 0;
  std::uint64_t frames_received = 0, frames_processed = 0, frames_dropped = 0, errors = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;  // frame received -> Result sent
  std::string end_reason;
};

struct ModelEvent {
  std::string kind;   // "load", "reload" (the file changed on disk), "unload", "load_failed"
  std::string model;  // the reference as asked (load, reload, load_failed) or the file (unload)
  double ms = 0;      // the load's duration (0 for unload)
  std::string error;  // load_failed: why
  std::int64_t time_ms = 0;
};

// Wall-clock milliseconds since the Unix epoch.
std::int64_t unix_ms();

}  // namespace aitw::net
