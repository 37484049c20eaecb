#pragma once
// The BSON aitw sends to MongoDB for the history, built apart from the connection so that unit tests check
// what the test server (CongoDB) cannot: the unique indexes on the natural keys, the TTL on events, the
// upserts' filters and the aggregation pipeline.
#include <bson/bson.h>

#include <chrono>
#include <string>
#include <utility>

#include "aitw/history/history.hpp"

namespace aitw::history::mongo {

// An owned bson_t (not a unique_ptr: bson_t's alignment attribute is dropped in template arguments).
class Bson {
 public:
  explicit Bson(bson_t* b) : b_(b) {}
  Bson(Bson&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  Bson& operator=(Bson&&) = delete;
  ~Bson() {
    if (b_) bson_destroy(b_);
  }
  bson_t* get() const { return b_; }
  const bson_t& operator*() const { return *b_; }

 private:
  bson_t* b_;
};

// Relaxed extended JSON of `b` (tests, error messages).
std::string to_json(const bson_t& b);

// {session_key: K}, {event_key: K}, {worker_id: W}: what each upsert matches (unique indexes below).
Bson session_filter(const SessionEntry& e);
Bson event_filter(const EventEntry& e);
Bson worker_filter(const WorkerRecord& w);
// {$set: {every field}}; times as BSON dates. No _id: MongoDB gives an upserted document an ObjectId.
Bson session_update(const SessionEntry& e);
Bson event_update(const EventEntry& e);
Bson worker_update(const WorkerRecord& w);

// {createIndexes: collection, indexes: [...]} for "sessions", "events" and "workers": the natural key
// unique; sessions by ended time, model and client; events by time with a TTL of `retention` (none when 0).
Bson create_indexes_command(const std::string& collection, std::chrono::seconds retention);

// The find filter of a Query ({ended: {$gte: date}, model?, client_id?}) and the stats pipeline
// ($match, $group by model and client, $sort).
Bson query_filter(const Query& q);
Bson stats_pipeline(const Query& q);

// The documents read back; fields missing or of another type read as empty / 0.
SessionEntry session_from_bson(const bson_t& doc);
WorkerRecord worker_from_bson(const bson_t& doc);
StatsRow stats_from_bson(const bson_t& doc);

}  // namespace aitw::history::mongo
