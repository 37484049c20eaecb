#pragma once
// MongoDB through the official C driver (libmongoc 1.23): collections sessions, events and workers in the
// URI's database (default "aitw"), indexes created on first contact, upserts by natural key in unordered
// bulk writes. The URI may carry credentials; only its redacted form is ever shown.
#include "aitw/history/history.hpp"
#include "aitw/mongodb/mongodb.hpp"

namespace aitw::history {

class MongoSink : public Sink {
 public:
  // Throws std::invalid_argument (naming the redacted URI) when the URI is malformed. Does not connect:
  // a server that is down fails the first write, not the worker's start.
  MongoSink(const std::string& uri, const SinkOptions& options);
  std::string describe() const override { return redacted_; }
  void write(const Batch& batch) override;
  std::vector<SessionEntry> sessions(const Query& q) override;
  std::vector<StatsRow> stats(const Query& q) override;
  std::vector<WorkerRecord> workers() override;

 private:
  void ensure_indexes();
  [[noreturn]] void fail(const std::string& what, const bson_error_t& e) const;

  std::string redacted_;
  SinkOptions options_;
  mongodb::Client client_;
  bool indexed_ = false;
};

}  // namespace aitw::history
