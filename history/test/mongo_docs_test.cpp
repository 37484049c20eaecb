// The BSON aitw sends to MongoDB, checked as documents: what CongoDB cannot verify (unique indexes, the TTL
// on events) and the shapes real MongoDB expects (upsert filters on natural keys, dates, the pipeline).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "history_fixtures.hpp"
#include "mongo_docs.hpp"

using namespace aitw::history;
using nlohmann::json;

namespace {

using aitw::history::testing::query;

json as_json(const mongo::Bson& b) {
  return json::parse(mongo::to_json(*b));
}

json index_named(const json& cmd, const std::string& name) {
  for (const auto& i : cmd.at("indexes"))
    if (i.at("name") == name) return i;
  return nullptr;
}

}  // namespace

TEST(MongoDocs, SessionIndexesUniqueNaturalKeyAndTimeModelClient) {
  const auto cmd = as_json(mongo::create_indexes_command("sessions", std::chrono::seconds(0)));
  EXPECT_EQ(cmd.at("createIndexes"), "sessions");
  const auto key = index_named(cmd, "session_key_unique");
  ASSERT_FALSE(key.is_null()) << cmd.dump();
  EXPECT_EQ(key.at("key"), json({{"session_key", 1}}));
  EXPECT_EQ(key.at("unique"), true);
  EXPECT_EQ(index_named(cmd, "ended").at("key"), json({{"ended", -1}}));
  // A compound index's field order matters: the filter's field first, then time (nlohmann's json sorts
  // keys; ordered_json keeps them).
  const auto ordered = nlohmann::ordered_json::parse(
      mongo::to_json(*mongo::create_indexes_command("sessions", std::chrono::seconds(0))));
  EXPECT_EQ(ordered["indexes"][2]["key"].dump(), R"({"model":1,"ended":-1})");
  EXPECT_EQ(ordered["indexes"][3]["key"].dump(), R"({"client_id":1,"ended":-1})");
  EXPECT_EQ(index_named(cmd, "model_ended").at("key"), json({{"model", 1}, {"ended", -1}}));
  for (const auto& i : cmd.at("indexes")) EXPECT_FALSE(i.contains("expireAfterSeconds")) << i.dump();
}

TEST(MongoDocs, EventsCarryTheRetentionAsATtlOnTime) {
  const auto ttl = as_json(mongo::create_indexes_command("events", std::chrono::hours(24 * 30)));
  const auto t = index_named(ttl, "time_ttl");
  ASSERT_FALSE(t.is_null()) << ttl.dump();
  EXPECT_EQ(t.at("key"), json({{"time", 1}}));
  EXPECT_EQ(t.at("expireAfterSeconds"), 30 * 24 * 3600);
  EXPECT_EQ(index_named(ttl, "event_key_unique").at("unique"), true);
  // No retention: a plain time index, no TTL.
  const auto plain = as_json(mongo::create_indexes_command("events", std::chrono::seconds(0)));
  EXPECT_TRUE(index_named(plain, "time_ttl").is_null());
  EXPECT_FALSE(index_named(plain, "time").contains("expireAfterSeconds"));
  const auto workers = as_json(mongo::create_indexes_command("workers", std::chrono::seconds(0)));
  EXPECT_EQ(index_named(workers, "worker_id_unique").at("unique"), true);
}

TEST(MongoDocs, SessionUpsertMatchesTheNaturalKeyAndSetsEveryField) {
  SessionEntry e{"w1/1/7", "w1", {}};
  e.record.client_id = "cam";
  e.record.model = "yolo11n@2";
  e.record.started_ms = 1'700'000'000'000;
  e.record.ended_ms = 1'700'000'005'000;
  e.record.frames_processed = 42;
  e.record.p95_ms = 31.5;
  EXPECT_EQ(as_json(mongo::session_filter(e)), json({{"session_key", "w1/1/7"}}));
  const auto u = as_json(mongo::session_update(e));
  ASSERT_TRUE(u.contains("$set")) << u.dump();
  const auto& set = u["$set"];
  EXPECT_FALSE(set.contains("_id"));  // MongoDB gives the upserted document an ObjectId
  for (const char* f :
       {"worker_id", "client_id", "peer", "model", "model_sha256", "started", "ended", "frames_received",
        "frames_processed", "frames_dropped", "errors", "p50_ms", "p95_ms", "p99_ms", "end_reason"})
    EXPECT_TRUE(set.contains(f)) << f;
  EXPECT_EQ(set["frames_processed"], 42);
  EXPECT_EQ(set["model"], "yolo11n@2");
  EXPECT_TRUE(set["ended"].contains("$date")) << set["ended"];  // a BSON date: TTL and range queries work
  // Read back the way `aitw history` reads documents.
  bson_t doc;
  bson_iter_t it, inner;
  const auto b = mongo::session_update(e);
  ASSERT_TRUE(bson_iter_init_find(&it, b.get(), "$set") && bson_iter_recurse(&it, &inner));
  const std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  bson_iter_document(&it, &len, &data);
  ASSERT_TRUE(bson_init_static(&doc, data, len));
  const auto back = mongo::session_from_bson(doc);
  EXPECT_EQ(back.session_key, "w1/1/7");
  EXPECT_EQ(back.record.ended_ms, e.record.ended_ms);
  EXPECT_EQ(back.record.frames_processed, 42u);
  EXPECT_DOUBLE_EQ(back.record.p95_ms, 31.5);
}

TEST(MongoDocs, QueryFilterAndStatsPipeline) {
  const auto f = as_json(mongo::query_filter(query(5000, "m", "c")));
  EXPECT_EQ(f["ended"]["$gte"]["$date"], "1970-01-01T00:00:05Z");
  EXPECT_EQ(f["model"], "m");
  EXPECT_EQ(f["client_id"], "c");
  EXPECT_FALSE(as_json(mongo::query_filter({})).contains("model"));
  const auto p = as_json(mongo::stats_pipeline({}))["pipeline"];
  ASSERT_EQ(p.size(), 3u) << p.dump();
  EXPECT_TRUE(p[0].contains("$match"));
  const auto& g = p[1]["$group"];
  EXPECT_EQ(g["_id"], json({{"model", "$model"}, {"client_id", "$client_id"}}));
  EXPECT_EQ(g["sessions"], json({{"$sum", 1}}));
  EXPECT_EQ(g["frames_dropped"], json({{"$sum", "$frames_dropped"}}));
  EXPECT_EQ(g["worst_p95_ms"], json({{"$max", "$p95_ms"}}));
  EXPECT_TRUE(p[2].contains("$sort"));
}
