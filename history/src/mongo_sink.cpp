#include "mongo_sink.hpp"

#include <functional>
#include <memory>

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

template <class Read, class OnError>
void each(mongoc_cursor_t* cursor, Read&& read, OnError&& on_error) {
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) read(*doc);
  bson_error_t e;
  if (mongoc_cursor_error(cursor, &e)) on_error(e);
}

// A server that is down must fail a write in seconds (the Recorder spools meanwhile), not after the driver's
// 30 s default; the URI's own settings win.
constexpr mongodb::Timeouts kTimeouts{2000, 2000, 10000};

}  // namespace

MongoSink::MongoSink(const std::string& uri, const SinkOptions& options)
    : redacted_(mongodb::redact_uri(uri)), options_(options), client_(uri, kTimeouts, "history URI") {}

void MongoSink::fail(const std::string& what, const bson_error_t& e) const {
  throw SinkError(redacted_ + ": " + what + ": " + e.message);
}

void MongoSink::ensure_indexes() {
  if (indexed_) return;
  for (const char* name : {"sessions", "events", "workers"}) {
    bson_error_t e;
    if (!client_.write_command(*mongo::create_indexes_command(name, options_.retention), e))
      fail(std::string("create indexes on ") + name, e);
  }
  indexed_ = true;
}

void MongoSink::write(const Batch& batch) {
  ensure_indexes();
  Bson upsert(BCON_NEW("upsert", BCON_BOOL(true)));
  const auto run = [&](const char* name, const auto& items, auto filter, auto update) {
    if (items.empty()) return;
    Collection c(client_.collection(name));
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
  Collection c(client_.collection("sessions"));
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
  Collection c(client_.collection("sessions"));
  const Bson pipeline = mongo::stats_pipeline(q);
  Cursor cur(mongoc_collection_aggregate(c.get(), MONGOC_QUERY_NONE, pipeline.get(), nullptr, nullptr));
  std::vector<StatsRow> out;
  each(
      cur.get(), [&](const bson_t& d) { out.push_back(mongo::stats_from_bson(d)); },
      [this](const bson_error_t& e) { fail("aggregate sessions", e); });
  return out;
}

std::vector<WorkerRecord> MongoSink::workers() {
  Collection c(client_.collection("workers"));
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
