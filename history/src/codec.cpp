#include "codec.hpp"

namespace aitw::history {

using nlohmann::json;

json to_json(const SessionEntry& e) {
  const auto& r = e.record;
  return {{"session_key", e.session_key},
          {"worker_id", e.worker_id},
          {"client_id", r.client_id},
          {"peer", r.peer},
          {"model", r.model},
          {"model_sha256", r.model_sha256},
          {"started", r.started_ms},
          {"ended", r.ended_ms},
          {"frames_received", r.frames_received},
          {"frames_processed", r.frames_processed},
          {"frames_dropped", r.frames_dropped},
          {"errors", r.errors},
          {"p50_ms", r.p50_ms},
          {"p95_ms", r.p95_ms},
          {"p99_ms", r.p99_ms},
          {"end_reason", r.end_reason}};
}

SessionEntry session_from_json(const json& j) {
  SessionEntry e;
  auto& r = e.record;
  e.session_key = j.at("session_key").get<std::string>();
  e.worker_id = j.at("worker_id").get<std::string>();
  r.client_id = j.at("client_id").get<std::string>();
  r.peer = j.at("peer").get<std::string>();
  r.model = j.at("model").get<std::string>();
  r.model_sha256 = j.at("model_sha256").get<std::string>();
  r.started_ms = j.at("started").get<std::int64_t>();
  r.ended_ms = j.at("ended").get<std::int64_t>();
  r.frames_received = j.at("frames_received").get<std::uint64_t>();
  r.frames_processed = j.at("frames_processed").get<std::uint64_t>();
  r.frames_dropped = j.at("frames_dropped").get<std::uint64_t>();
  r.errors = j.at("errors").get<std::uint64_t>();
  r.p50_ms = j.at("p50_ms").get<double>();
  r.p95_ms = j.at("p95_ms").get<double>();
  r.p99_ms = j.at("p99_ms").get<double>();
  r.end_reason = j.at("end_reason").get<std::string>();
  return e;
}

json to_json(const EventEntry& e) {
  return {{"event_key", e.event_key}, {"worker_id", e.worker_id}, {"time", e.event.time_ms},
          {"kind", e.event.kind},     {"model", e.event.model},   {"ms", e.event.ms},
          {"error", e.event.error}};
}

EventEntry event_from_json(const json& j) {
  EventEntry e;
  e.event_key = j.at("event_key").get<std::string>();
  e.worker_id = j.at("worker_id").get<std::string>();
  e.event.time_ms = j.at("time").get<std::int64_t>();
  e.event.kind = j.at("kind").get<std::string>();
  e.event.model = j.at("model").get<std::string>();
  e.event.ms = j.at("ms").get<double>();
  e.event.error = j.at("error").get<std::string>();
  return e;
}

json to_json(const WorkerRecord& w) {
  return {{"worker_id", w.worker_id},
          {"host", w.host},
          {"version", w.version},
          {"state", w.state},
          {"models_loaded", w.models_loaded},
          {"sessions_active", w.sessions_active},
          {"sessions_total", w.sessions_total},
          {"started", w.started_ms},
          {"last_seen", w.last_seen_ms}};
}

json to_json(const StatsRow& r) {
  return {{"model", r.model},
          {"client_id", r.client},
          {"sessions", r.sessions},
          {"frames_received", r.frames_received},
          {"frames_processed", r.frames_processed},
          {"frames_dropped", r.frames_dropped},
          {"drop_percent", r.drop_percent()},
          {"worst_p95_ms", r.worst_p95_ms}};
}

}  // namespace aitw::history
