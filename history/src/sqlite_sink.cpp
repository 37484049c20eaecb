#include "sqlite_sink.hpp"

#include <filesystem>

namespace aitw::history {
namespace {

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
  session_key TEXT PRIMARY KEY, worker_id TEXT NOT NULL, client_id TEXT, peer TEXT, model TEXT,
  model_sha256 TEXT, started INTEGER, ended INTEGER, frames_received INTEGER, frames_processed INTEGER,
  frames_dropped INTEGER, errors INTEGER, p50_ms REAL, p95_ms REAL, p99_ms REAL, end_reason TEXT);
CREATE INDEX IF NOT EXISTS sessions_ended ON sessions(ended);
CREATE INDEX IF NOT EXISTS sessions_model ON sessions(model, ended);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions(client_id, ended);
CREATE TABLE IF NOT EXISTS events (
  event_key TEXT PRIMARY KEY, worker_id TEXT NOT NULL, time INTEGER, kind TEXT, model TEXT, ms REAL,
  error TEXT);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS workers (
  worker_id TEXT PRIMARY KEY, host TEXT, version TEXT, state TEXT, models_loaded INTEGER,
  sessions_active INTEGER, sessions_total INTEGER, started INTEGER, last_seen INTEGER);
)sql";

// A prepared statement, finalized on every path out.
struct Statement {
  sqlite3_stmt* st = nullptr;
  ~Statement() { sqlite3_finalize(st); }
  void text(int i, const std::string& v) { sqlite3_bind_text(st, i, v.c_str(), -1, SQLITE_TRANSIENT); }
  void integer(int i, std::int64_t v) { sqlite3_bind_int64(st, i, v); }
  void real(int i, double v) { sqlite3_bind_double(st, i, v); }
  std::string col_text(int i) const {
    const auto* p = sqlite3_column_text(st, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t col_int(int i) const { return sqlite3_column_int64(st, i); }
  double col_real(int i) const { return sqlite3_column_double(st, i); }
};

// WHERE clause and its bound values for a Query.
void bind_query(Statement& s, const Query& q, int first) {
  s.integer(first, q.since_ms);
  s.text(first + 1, q.model);
  s.text(first + 2, q.client);
}
const char* const kWhere = " WHERE ended >= ?1 AND (?2 = '' OR model = ?2) AND (?3 = '' OR client_id = ?3)";

}  // namespace

SqliteSink::SqliteSink(std::string path, const SinkOptions& options) : path_(std::move(path)) {
  try {
    open(options);
  } catch (...) {
    sqlite3_close_v2(db_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

void SqliteSink::open(const SinkOptions& options) {
  std::error_code ec;
  const auto dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK)
    fail("cannot open");
  // A reader (aitw history) and the worker's writer on the same file: wait for the other's lock briefly.
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");  // WAL: durable at checkpoints, safe against corruption
  exec(kSchema);
  if (options.retention.count() > 0) {
    Statement s;
    sqlite3_prepare_v2(db_, "DELETE FROM events WHERE time < ?", -1, &s.st, nullptr);
    s.integer(
        1, net::unix_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count());
    if (sqlite3_step(s.st) != SQLITE_DONE) fail("cannot expire events");
  }
}

SqliteSink::~SqliteSink() {
  sqlite3_close_v2(db_);
}

void SqliteSink::fail(const std::string& what) const {
  throw SinkError("history sqlite:" + path_ + ": " + what + ": " +
                  (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

void SqliteSink::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string m = err ? err : "?";
    sqlite3_free(err);
    throw SinkError("history sqlite:" + path_ + ": " + m);
  }
}

void SqliteSink::write(const Batch& batch) {
  exec("BEGIN");
  try {
    Statement s;
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &s.st, nullptr) != SQLITE_OK)
      fail("prepare sessions");
    for (const auto& e : batch.sessions) {
      const auto& r = e.record;
      sqlite3_reset(s.st);
      s.text(1, e.session_key);
      s.text(2, e.worker_id);
      s.text(3, r.client_id);
      s.text(4, r.peer);
      s.text(5, r.model);
      s.text(6, r.model_sha256);
      s.integer(7, r.started_ms);
      s.integer(8, r.ended_ms);
      s.integer(9, static_cast<std::int64_t>(r.frames_received));
      s.integer(10, static_cast<std::int64_t>(r.frames_processed));
      s.integer(11, static_cast<std::int64_t>(r.frames_dropped));
      s.integer(12, static_cast<std::int64_t>(r.errors));
      s.real(13, r.p50_ms);
      s.real(14, r.p95_ms);
      s.real(15, r.p99_ms);
      s.text(16, r.end_reason);
      if (sqlite3_step(s.st) != SQLITE_DONE) fail("insert session");
    }
    Statement ev;
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?)", -1, &ev.st,
                           nullptr) != SQLITE_OK)
      fail("prepare events");
    for (const auto& e : batch.events) {
      sqlite3_reset(ev.st);
      ev.text(1, e.event_key);
      ev.text(2, e.worker_id);
      ev.integer(3, e.event.time_ms);
      ev.text(4, e.event.kind);
      ev.text(5, e.event.model);
      ev.real(6, e.event.ms);
      ev.text(7, e.event.error);
      if (sqlite3_step(ev.st) != SQLITE_DONE) fail("insert event");
    }
    Statement w;
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO workers VALUES (?,?,?,?,?,?,?,?,?)", -1, &w.st,
                           nullptr) != SQLITE_OK)
      fail("prepare workers");
    for (const auto& x : batch.workers) {
      sqlite3_reset(w.st);
      w.text(1, x.worker_id);
      w.text(2, x.host);
      w.text(3, x.version);
      w.text(4, x.state);
      w.integer(5, static_cast<std::int64_t>(x.models_loaded));
      w.integer(6, static_cast<std::int64_t>(x.sessions_active));
      w.integer(7, static_cast<std::int64_t>(x.sessions_total));
      w.integer(8, x.started_ms);
      w.integer(9, x.last_seen_ms);
      if (sqlite3_step(w.st) != SQLITE_DONE) fail("upsert worker");
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<SessionEntry> SqliteSink::sessions(const Query& q) {
  Statement s;
  const std::string sql = std::string("SELECT * FROM sessions") + kWhere + " ORDER BY ended DESC LIMIT ?4";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s.st, nullptr) != SQLITE_OK) fail("query sessions");
  bind_query(s, q, 1);
  s.integer(4, static_cast<std::int64_t>(q.limit));
  std::vector<SessionEntry> out;
  int rc;
  while ((rc = sqlite3_step(s.st)) == SQLITE_ROW) {
    SessionEntry e;
    auto& r = e.record;
    e.session_key = s.col_text(0);
    e.worker_id = s.col_text(1);
    r.client_id = s.col_text(2);
    r.peer = s.col_text(3);
    r.model = s.col_text(4);
    r.model_sha256 = s.col_text(5);
    r.started_ms = s.col_int(6);
    r.ended_ms = s.col_int(7);
    r.frames_received = static_cast<std::uint64_t>(s.col_int(8));
    r.frames_processed = static_cast<std::uint64_t>(s.col_int(9));
    r.frames_dropped = static_cast<std::uint64_t>(s.col_int(10));
    r.errors = static_cast<std::uint64_t>(s.col_int(11));
    r.p50_ms = s.col_real(12);
    r.p95_ms = s.col_real(13);
    r.p99_ms = s.col_real(14);
    r.end_reason = s.col_text(15);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) fail("query sessions");
  return out;
}

std::vector<StatsRow> SqliteSink::stats(const Query& q) {
  Statement s;
  const std::string sql =
      std::string(
          "SELECT model, client_id, COUNT(*), SUM(frames_received), SUM(frames_processed), "
          "SUM(frames_dropped), MAX(p95_ms) FROM sessions") +
      kWhere + " GROUP BY model, client_id ORDER BY model, client_id";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s.st, nullptr) != SQLITE_OK) fail("query stats");
  bind_query(s, q, 1);
  std::vector<StatsRow> out;
  int rc;
  while ((rc = sqlite3_step(s.st)) == SQLITE_ROW) {
    StatsRow r;
    r.model = s.col_text(0);
    r.client = s.col_text(1);
    r.sessions = static_cast<std::uint64_t>(s.col_int(2));
    r.frames_received = static_cast<std::uint64_t>(s.col_int(3));
    r.frames_processed = static_cast<std::uint64_t>(s.col_int(4));
    r.frames_dropped = static_cast<std::uint64_t>(s.col_int(5));
    r.worst_p95_ms = s.col_real(6);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) fail("query stats");
  return out;
}

std::vector<WorkerRecord> SqliteSink::workers() {
  Statement s;
  if (sqlite3_prepare_v2(db_, "SELECT * FROM workers ORDER BY worker_id", -1, &s.st, nullptr) != SQLITE_OK)
    fail("query workers");
  std::vector<WorkerRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.st)) == SQLITE_ROW) {
    WorkerRecord w;
    w.worker_id = s.col_text(0);
    w.host = s.col_text(1);
    w.version = s.col_text(2);
    w.state = s.col_text(3);
    w.models_loaded = static_cast<std::uint64_t>(s.col_int(4));
    w.sessions_active = static_cast<std::uint64_t>(s.col_int(5));
    w.sessions_total = static_cast<std::uint64_t>(s.col_int(6));
    w.started_ms = s.col_int(7);
    w.last_seen_ms = s.col_int(8);
    out.push_back(std::move(w));
  }
  if (rc != SQLITE_DONE) fail("query workers");
  return out;
}

}  // namespace aitw::history
