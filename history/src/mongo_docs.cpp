#include "mongo_docs.hpp"

namespace aitw::history::mongo {
namespace {

void utf8(bson_t* b, const char* key, const std::string& v) {
  bson_append_utf8(b, key, -1, v.c_str(), static_cast<int>(v.size()));
}
void i64(bson_t* b, const char* key, std::uint64_t v) {
  bson_append_int64(b, key, -1, static_cast<std::int64_t>(v));
}

std::string get_str(const bson_t& d, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &d, key) || !BSON_ITER_HOLDS_UTF8(&it)) return "";
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string(s, len);
}
double get_num(const bson_t& d, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &d, key)) return 0;
  if (BSON_ITER_HOLDS_DATE_TIME(&it)) return static_cast<double>(bson_iter_date_time(&it));
  return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_double(&it) : 0;
}
std::int64_t get_int(const bson_t& d, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &d, key)) return 0;
  if (BSON_ITER_HOLDS_DATE_TIME(&it)) return bson_iter_date_time(&it);
  return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

Bson one(const char* key, const std::string& value) {
  Bson b(bson_new());
  utf8(b.get(), key, value);
  return b;
}

// {key: 1[, key2: -1]}, name, [unique], [expireAfterSeconds]
void add_index(bson_t* indexes, int& n, const std::string& name,
               std::initializer_list<std::pair<const char*, int>> keys, bool unique,
               std::int64_t expire_after = -1) {
  bson_t index, key;
  const std::string i = std::to_string(n++);
  bson_append_document_begin(indexes, i.c_str(), -1, &index);
  bson_append_document_begin(&index, "key", -1, &key);
  for (const auto& [field, dir] : keys) bson_append_int32(&key, field, -1, dir);
  bson_append_document_end(&index, &key);
  utf8(&index, "name", name);
  if (unique) bson_append_bool(&index, "unique", -1, true);
  if (expire_after >= 0) bson_append_int64(&index, "expireAfterSeconds", -1, expire_after);
  bson_append_document_end(indexes, &index);
}

}  // namespace

Bson session_filter(const SessionEntry& e) {
  return one("session_key", e.session_key);
}
Bson event_filter(const EventEntry& e) {
  return one("event_key", e.event_key);
}
Bson worker_filter(const WorkerRecord& w) {
  return one("worker_id", w.worker_id);
}

Bson session_update(const SessionEntry& e) {
  const auto& r = e.record;
  Bson b(bson_new());
  bson_t set;
  bson_append_document_begin(b.get(), "$set", -1, &set);
  utf8(&set, "session_key", e.session_key);
  utf8(&set, "worker_id", e.worker_id);
  utf8(&set, "client_id", r.client_id);
  utf8(&set, "peer", r.peer);
  utf8(&set, "model", r.model);
  utf8(&set, "model_sha256", r.model_sha256);
  bson_append_date_time(&set, "started", -1, r.started_ms);
  bson_append_date_time(&set, "ended", -1, r.ended_ms);
  i64(&set, "frames_received", r.frames_received);
  i64(&set, "frames_processed", r.frames_processed);
  i64(&set, "frames_dropped", r.frames_dropped);
  i64(&set, "errors", r.errors);
  bson_append_double(&set, "p50_ms", -1, r.p50_ms);
  bson_append_double(&set, "p95_ms", -1, r.p95_ms);
  bson_append_double(&set, "p99_ms", -1, r.p99_ms);
  utf8(&set, "end_reason", r.end_reason);
  bson_append_document_end(b.get(), &set);
  return b;
}

Bson event_update(const EventEntry& e) {
  Bson b(bson_new());
  bson_t set;
  bson_append_document_begin(b.get(), "$set", -1, &set);
  utf8(&set, "event_key", e.event_key);
  utf8(&set, "worker_id", e.worker_id);
  bson_append_date_time(&set, "time", -1, e.event.time_ms);
  utf8(&set, "kind", e.event.kind);
  utf8(&set, "model", e.event.model);
  bson_append_double(&set, "ms", -1, e.event.ms);
  utf8(&set, "error", e.event.error);
  bson_append_document_end(b.get(), &set);
  return b;
}

Bson worker_update(const WorkerRecord& w) {
  Bson b(bson_new());
  bson_t set;
  bson_append_document_begin(b.get(), "$set", -1, &set);
  utf8(&set, "worker_id", w.worker_id);
  utf8(&set, "host", w.host);
  utf8(&set, "version", w.version);
  utf8(&set, "state", w.state);
  i64(&set, "models_loaded", w.models_loaded);
  i64(&set, "sessions_active", w.sessions_active);
  i64(&set, "sessions_total", w.sessions_total);
  bson_append_date_time(&set, "started", -1, w.started_ms);
  bson_append_date_time(&set, "last_seen", -1, w.last_seen_ms);
  bson_append_document_end(b.get(), &set);
  return b;
}

Bson create_indexes_command(const std::string& collection, std::chrono::seconds retention) {
  Bson b(bson_new());
  utf8(b.get(), "createIndexes", collection);
  bson_t indexes;
  bson_append_array_begin(b.get(), "indexes", -1, &indexes);
  int n = 0;
  if (collection == "sessions") {
    add_index(&indexes, n, "session_key_unique", {{"session_key", 1}}, true);
    add_index(&indexes, n, "ended", {{"ended", -1}}, false);
    add_index(&indexes, n, "model_ended", {{"model", 1}, {"ended", -1}}, false);
    add_index(&indexes, n, "client_ended", {{"client_id", 1}, {"ended", -1}}, false);
  } else if (collection == "events") {
    add_index(&indexes, n, "event_key_unique", {{"event_key", 1}}, true);
    // The TTL: MongoDB deletes an event once `time` is older than the retention.
    add_index(&indexes, n, retention.count() > 0 ? "time_ttl" : "time", {{"time", 1}}, false,
              retention.count() > 0 ? retention.count() : -1);
    add_index(&indexes, n, "model_time", {{"model", 1}, {"time", -1}}, false);
  } else {
    add_index(&indexes, n, "worker_id_unique", {{"worker_id", 1}}, true);
  }
  bson_append_array_end(b.get(), &indexes);
  return b;
}

Bson query_filter(const Query& q) {
  Bson b(bson_new());
  bson_t ended;
  bson_append_document_begin(b.get(), "ended", -1, &ended);
  bson_append_date_time(&ended, "$gte", -1, q.since_ms);
  bson_append_document_end(b.get(), &ended);
  if (!q.model.empty()) utf8(b.get(), "model", q.model);
  if (!q.client.empty()) utf8(b.get(), "client_id", q.client);
  return b;
}

Bson stats_pipeline(const Query& q) {
  Bson b(bson_new());
  bson_t stages, match, group, id, sort, acc;
  bson_append_array_begin(b.get(), "pipeline", -1, &stages);
  bson_append_document_begin(&stages, "0", -1, &match);
  const Bson filter = query_filter(q);
  bson_append_document(&match, "$match", -1, filter.get());
  bson_append_document_end(&stages, &match);
  bson_append_document_begin(&stages, "1", -1, &group);
  bson_append_document_begin(&group, "$group", -1, &acc);
  bson_append_document_begin(&acc, "_id", -1, &id);
  utf8(&id, "model", "$model");
  utf8(&id, "client_id", "$client_id");
  bson_append_document_end(&acc, &id);
  const auto op = [&acc](const char* name, const char* how, const char* field) {
    bson_t d;
    bson_append_document_begin(&acc, name, -1, &d);
    if (field)
      utf8(&d, how, field);
    else
      bson_append_int32(&d, how, -1, 1);
    bson_append_document_end(&acc, &d);
  };
  op("sessions", "$sum", nullptr);
  op("frames_received", "$sum", "$frames_received");
  op("frames_processed", "$sum", "$frames_processed");
  op("frames_dropped", "$sum", "$frames_dropped");
  op("worst_p95_ms", "$max", "$p95_ms");
  bson_append_document_end(&group, &acc);
  bson_append_document_end(&stages, &group);
  bson_append_document_begin(&stages, "2", -1, &sort);
  bson_t by;
  bson_append_document_begin(&sort, "$sort", -1, &by);
  bson_append_int32(&by, "_id.model", -1, 1);
  bson_append_int32(&by, "_id.client_id", -1, 1);
  bson_append_document_end(&sort, &by);
  bson_append_document_end(&stages, &sort);
  bson_append_array_end(b.get(), &stages);
  return b;
}

SessionEntry session_from_bson(const bson_t& d) {
  SessionEntry e;
  auto& r = e.record;
  e.session_key = get_str(d, "session_key");
  e.worker_id = get_str(d, "worker_id");
  r.client_id = get_str(d, "client_id");
  r.peer = get_str(d, "peer");
  r.model = get_str(d, "model");
  r.model_sha256 = get_str(d, "model_sha256");
  r.started_ms = get_int(d, "started");
  r.ended_ms = get_int(d, "ended");
  r.frames_received = static_cast<std::uint64_t>(get_int(d, "frames_received"));
  r.frames_processed = static_cast<std::uint64_t>(get_int(d, "frames_processed"));
  r.frames_dropped = static_cast<std::uint64_t>(get_int(d, "frames_dropped"));
  r.errors = static_cast<std::uint64_t>(get_int(d, "errors"));
  r.p50_ms = get_num(d, "p50_ms");
  r.p95_ms = get_num(d, "p95_ms");
  r.p99_ms = get_num(d, "p99_ms");
  r.end_reason = get_str(d, "end_reason");
  return e;
}

WorkerRecord worker_from_bson(const bson_t& d) {
  WorkerRecord w;
  w.worker_id = get_str(d, "worker_id");
  w.host = get_str(d, "host");
  w.version = get_str(d, "version");
  w.state = get_str(d, "state");
  w.models_loaded = static_cast<std::uint64_t>(get_int(d, "models_loaded"));
  w.sessions_active = static_cast<std::uint64_t>(get_int(d, "sessions_active"));
  w.sessions_total = static_cast<std::uint64_t>(get_int(d, "sessions_total"));
  w.started_ms = get_int(d, "started");
  w.last_seen_ms = get_int(d, "last_seen");
  return w;
}

StatsRow stats_from_bson(const bson_t& d) {
  StatsRow r;
  bson_iter_t it, id;
  if (bson_iter_init_find(&it, &d, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &id)) {
    while (bson_iter_next(&id)) {
      if (!BSON_ITER_HOLDS_UTF8(&id)) continue;
      const std::string key = bson_iter_key(&id);
      (key == "model" ? r.model : r.client) = bson_iter_utf8(&id, nullptr);
    }
  }
  r.sessions = static_cast<std::uint64_t>(get_int(d, "sessions"));
  r.frames_received = static_cast<std::uint64_t>(get_int(d, "frames_received"));
  r.frames_processed = static_cast<std::uint64_t>(get_int(d, "frames_processed"));
  r.frames_dropped = static_cast<std::uint64_t>(get_int(d, "frames_dropped"));
  r.worst_p95_ms = get_num(d, "worst_p95_ms");
  return r;
}

}  // namespace aitw::history::mongo
