#pragma once
// The execution history and fleet inventory: one record per session when it ends, one event per model load,
// reload, unload or load failure, and one document per worker (its state, refreshed every few seconds).
// A Sink stores them: SQLite (the embedded default, `$XDG_STATE_HOME/aitw/history.db`) or MongoDB
// (`mongodb://HOST:PORT/DB`). The Recorder (recorder.hpp) feeds a Sink from a background thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "aitw/net/records.hpp"

namespace aitw::history {

// A session as stored: the worker's record plus the keys that make resending it harmless. `session_key` is
// natural (worker id, the run's start, the session number): a batch written twice (a spool replayed after
// a write whose answer was lost) upserts the same rows.
struct SessionEntry {
  std::string session_key;
  std::string worker_id;
  net::SessionRecord record;
};

struct EventEntry {
  std::string event_key;  // worker id, run, sequence number (natural, as session_key)
  std::string worker_id;
  net::ModelEvent event;
};

// The fleet inventory: one per worker, replaced on each update.
struct WorkerRecord {
  std::string worker_id, host, version;
  std::string state;  // IDLE, LOADING, READY, SESSION_ACTIVE (aitw/net/server.hpp), STOPPED when it exits
  std::uint64_t models_loaded = 0, sessions_active = 0, sessions_total = 0;
  std::int64_t started_ms = 0, last_seen_ms = 0;
};

struct Batch {
  std::vector<SessionEntry> sessions;
  std::vector<EventEntry> events;
  std::vector<WorkerRecord> workers;
  bool empty() const { return sessions.empty() && events.empty() && workers.empty(); }
};

// Which sessions `aitw history` lists (and `history stats` aggregates): ended at or after since_ms, of the
// model / client when given; newest first.
struct Query {
  std::int64_t since_ms = 0;
  std::string model, client;
  std::size_t limit = 1000;
};

// One row of `aitw history stats`: per model and client.
struct StatsRow {
  std::string model, client;
  std::uint64_t sessions = 0, frames_received = 0, frames_processed = 0, frames_dropped = 0;
  double worst_p95_ms = 0;
  double drop_percent() const {
    return frames_received
               ? 100.0 * static_cast<double>(frames_dropped) / static_cast<double>(frames_received)
               : 0.0;
  }
};

// The store is unreachable or refused a write (the Recorder spools and retries); the message names the
// store by its redacted URI and says why.
struct SinkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // The store as logs may show it: credentials removed.
  virtual std::string describe() const = 0;
  // Stores the whole batch (sessions and events upserted by their natural keys, workers by worker_id), or
  // throws SinkError. A failed batch may have been stored in part: writing it again is harmless.
  virtual void write(const Batch& batch) = 0;
  virtual std::vector<SessionEntry> sessions(const Query& q) = 0;
  virtual std::vector<StatsRow> stats(const Query& q) = 0;
  virtual std::vector<WorkerRecord> workers() = 0;
};

struct SinkOptions {
  // Events older than this are removed (a TTL index on MongoDB; deleted at start-up on SQLite). 0 = kept.
  std::chrono::seconds retention{0};
};

// "none" -> nullptr; "sqlite:PATH", a path -> SQLite; "mongodb://..." -> MongoDB. Throws
// std::invalid_argument naming the (redacted) URI when it is malformed, SinkError when a SQLite file cannot
// be opened. A MongoDB that is down does not fail here: the first write does.
std::unique_ptr<Sink> open_sink(const std::string& uri, const SinkOptions& options = {});

// The URI in force: `flag` when given, else $AITW_HISTORY, else "sqlite:" + default_sqlite_path().
std::string resolve_uri(const std::string& flag);
// $XDG_STATE_HOME/aitw/history.db, or ~/.local/state/aitw/history.db.
std::string default_sqlite_path();

}  // namespace aitw::history
