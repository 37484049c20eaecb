#pragma once
// The embedded default: a SQLite database in WAL mode (readers such as `aitw history` never block the
// worker's writes), tables sessions, events and workers keyed by their natural keys.
#include <sqlite3.h>

#include "aitw/history/history.hpp"

namespace aitw::history {

class SqliteSink : public Sink {
 public:
  // Creates the file, its directory and the tables when missing; throws SinkError naming the path.
  SqliteSink(std::string path, const SinkOptions& options);
  ~SqliteSink() override;
  std::string describe() const override { return "sqlite:" + path_; }
  void write(const Batch& batch) override;
  std::vector<SessionEntry> sessions(const Query& q) override;
  std::vector<StatsRow> stats(const Query& q) override;
  std::vector<WorkerRecord> workers() override;

 private:
  void open(const SinkOptions& options);
  void exec(const std::string& sql);
  [[noreturn]] void fail(const std::string& what) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace aitw::history
