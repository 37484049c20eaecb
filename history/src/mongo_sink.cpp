#include "mongo_sink.hpp"

#include <functional>
#include <mutex>

#include "aitw/base/log.hpp"
#include "mongo_docs.hpp"

namespace aitw::history {
namespace {

using mongo::Bson;

struct CollectionFree {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
using Collection = std::unique_ptr<mongoc_collection_t, CollectionFree>;
struct CursorFree {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};
using Cursor = std::unique_ptr<mongoc_cursor_t, CursorFree>;

void init_driver() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_init();
    // The driver's own messages go to aitw's log at debug level: its warnings repeat for every retry of an
    // unreachable server, which the Recorder reports once per outage instead.
    mongoc_log_set_handler([](mongoc_log_level_t, const char* domain, const char* message,
                              void*) { log_debug(std::string("mongoc ") + domain + ": " + message); },
                           nullptr);
  });
}

// A server that is down must fail a write in seconds (the Recorder spools meanwhile), not after the
// driver's 30 s default; the URI's own settings win.
void default_timeout(mongoc_uri_t* uri, const char* option, int ms) {
  if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, ms);
}

template <class Read, class OnError>
void each(mongoc_cursor_t* cursor, Read&& read, OnError&& on_error) {
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) read(*doc);
  bson_error_t e;
  if (mongoc_cursor_error(cursor, &e)) on_error(e);
}

}  // namespace

MongoSink::MongoSink(const std::string& uri, const SinkOptions& options)
    : redacted_(redact_uri(uri)), options_(options) {
  init_driver();
  bson_error_t e;
  mongoc_uri_t* u = mongoc_uri_new_with_error(uri.c_str(), &e);
  if (!u) throw std::invalid_argument("history URI '" + redacted_ + "': " + e.message);
  default_timeout(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
  default_timeout(u, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
  default_timeout(u, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
  const char* db = mongoc_uri_get_database(u);
  database_ = db && *db ? db : "aitw";
  client_ = mongoc_client_new_from_uri_with_error(u, &e);
  mongoc_uri_destroy(u);
  if (!client_) throw std::invalid_argument("history URI '" + redacted_ + "': " + e.message);
  mongoc_client_set_appname(client_, "aitw");
  mongoc_client_set_error_api(client_, MONGOC_ERROR_API_VERSION_2);
}

MongoSink::~MongoSink() {
  mongoc_client_destroy(client_);
}

void MongoSink::fail(const std::string& what, const bson_error_t& e) const {
  throw SinkError(redacted_ + ": " + what + ": " + e.message);
}

mongoc_collection_t* MongoSink::collection(const char* name) {
  return mongoc_client_get_collection(client_, database_.c_str(), name);
}

void MongoSink::ensure_indexes() {
  if (indexed_) return;
  mongoc_database_t* db = mongoc_client_get_database(client_, database_.c_str());
  for (const char* name : {"sessions", "events", "workers"}) {
    const Bson cmd = mongo::create_indexes_command(name, options_.retention);
    bson_error_t e;
    bson_t reply;
    const bool ok = mongoc_database_write_command_with_opts(db, cmd.get(), nullptr, &reply, &e);
    bson_destroy(&reply);
    if (!ok) {
      mongoc_database_destroy(db);
      fail(std::string("create indexes on ") + name, e);
    }
  }
  mongoc_database_destroy(db);
  indexed_ = true;
}

void MongoSink::write(const Batch& batch) {
  ensure_indexes();
  Bson upsert(BCON_NEW("upsert", BCON_BOOL(true)));
  const auto run = [&](const char* name, const auto& items, auto filter, auto update) {
    if (items.empty()) return;
    Collection c(collection(name));
    Bson opts(BCON_NEW("ordered", BCON_BOOL(false)));
    mongoc_bulk_operation_t* bulk = mongoc_collection_create_bulk_operation_with_opts(c.get(), opts.get());
    bson_error_t e;
    for (const auto& item : items) {
      const Bson f = filter(item), u = update(item);
      if (!mongoc_bulk_operation_update_one_with_opts(bulk, f.get(), u.get(), upsert.get(), &e)) {
        mongoc_bulk_operation_destroy(bulk);
        fail(std::string("write ") + name, e);
      }
    }
    bson_t reply;
    const bool ok = mongoc_bulk_operation_execute(bulk, &reply, &e) != 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    if (!ok) fail(std::string("write ") + name, e);
  };
  run("sessions", batch.sessions, mongo::session_filter, mongo::session_update);
  run("events", batch.events, mongo::event_filter, mongo::event_update);
  run("workers", batch.workers, mongo::worker_filter, mongo::worker_update);
}

std::vector<SessionEntry> MongoSink::sessions(const Query& q) {
  Collection c(collection("sessions"));
  const Bson filter = mongo::query_filter(q);
  Bson opts(BCON_NEW("sort", "{", "ended", BCON_INT32(-1), "}", "limit",
                     BCON_INT64(static_cast<std::int64_t>(q.limit))));
  Cursor cur(mongoc_collection_find_with_opts(c.get(), filter.get(), opts.get(), nullptr));
  std::vector<SessionEntry> out;
  each(
      cur.get(), [&](const bson_t& d) { out.push_back(mongo::session_from_bson(d)); },
      [this](const bson_error_t& e) { fail("read sessions", e); });
  return out;
}

std::vector<StatsRow> MongoSink::stats(const Query& q) {
  Collection c(collection("sessions"));
  const Bson pipeline = mongo::stats_pipeline(q);
  Cursor cur(mongoc_collection_aggregate(c.get(), MONGOC_QUERY_NONE, pipeline.get(), nullptr, nullptr));
  std::vector<StatsRow> out;
  each(
      cur.get(), [&](const bson_t& d) { out.push_back(mongo::stats_from_bson(d)); },
      [this](const bson_error_t& e) { fail("aggregate sessions", e); });
  return out;
}

std::vector<WorkerRecord> MongoSink::workers() {
  Collection c(collection("workers"));
  Bson filter(bson_new());
  Bson opts(BCON_NEW("sort", "{", "worker_id", BCON_INT32(1), "}"));
  Cursor cur(mongoc_collection_find_with_opts(c.get(), filter.get(), opts.get(), nullptr));
  std::vector<WorkerRecord> out;
  each(
      cur.get(), [&](const bson_t& d) { out.push_back(mongo::worker_from_bson(d)); },
      [this](const bson_error_t& e) { fail("read workers", e); });
  return out;
}

}  // namespace aitw::history
