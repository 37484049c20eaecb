#pragma once
// Feeds a Sink from one background thread, so that history never slows or stops serving: the server's
// callbacks only queue (bounded), the thread writes batches every flush interval, refreshes the worker's
// inventory record every worker interval, and while the store is down or failing spools the records to a
// bounded file on disk (JSON lines), sent when it answers again. Each record reaches the store exactly once
// as a row/document: writes are upserts keyed by natural ids, so a batch resent after an unanswered write
// replaces itself. One log line when an outage starts and one when it ends, never one per record.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "aitw/history/history.hpp"

namespace aitw::history {

struct RecorderOptions {
  std::string worker_id;
  std::chrono::milliseconds flush_interval{500};
  std::chrono::milliseconds worker_interval{3000};
  std::string spool_path;  // empty: records are dropped (counted) while the store is down
  std::uint64_t spool_max_bytes = 64ull << 20;    // beyond it new records are dropped (counted)
  std::size_t queue_max = 100000;                 // records waiting in memory; beyond it dropped (counted)
  std::function<WorkerRecord()> worker_snapshot;  // the inventory record now (state, models, sessions)
};

class Recorder {
 public:
  Recorder(std::unique_ptr<Sink> sink, RecorderOptions options);
  ~Recorder();  // stop()
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // From any thread (the server's io thread); they only queue.
  void session_ended(const net::SessionRecord& r);
  void model_event(const net::ModelEvent& e);
  // Writes what is queued and the worker's last record (`final_state`, e.g. STOPPED) once more, then ends
  // the thread. What the store does not take stays in the spool for the next run. Idempotent.
  void stop(const std::string& final_state = "STOPPED");

  std::uint64_t spooled() const { return spooled_.load(); }        // records in the spool file now
  std::uint64_t dropped_total() const { return dropped_.load(); }  // records lost (queue or spool full)
  std::uint64_t written_total() const { return written_.load(); }  // session and event records stored
  const std::string& run_id() const { return run_id_; }

 private:
  void loop();
  void flush(bool final, const std::string& final_state);
  bool send_spool();
  void spool(const Batch& b);
  void outage(const std::string& why);

  std::unique_ptr<Sink> sink_;
  RecorderOptions opt_;
  std::string run_id_;
  std::int64_t started_ms_;
  std::uint64_t next_event_ = 1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SessionEntry> sessions_;
  std::deque<EventEntry> events_;
  bool stopping_ = false;
  std::string final_state_;
  bool down_ = false;  // in an outage (logged once)
  std::chrono::steady_clock::time_point next_worker_{};
  std::atomic<std::uint64_t> spooled_{0}, dropped_{0}, written_{0};
  std::thread thread_;
};

}  // namespace aitw::history
