#pragma once
// The BSON aitw sends to MongoDB for the history, built apart from the connection so that unit tests check
// what the test server (CongoDB) cannot: the unique indexes on the natural keys, the TTL on events, the
// upserts' filters and the aggregation pipeline.
#include <chrono>
#include <string>

#include "aitw/history/history.hpp"
#include "aitw/mongodb/mongodb.hpp"

namespace aitw::history::mongo {

using mongodb::Bson;
using mongodb::to_json;

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
