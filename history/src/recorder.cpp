#include "aitw/history/recorder.hpp"

#include <filesystem>
#include <fstream>

#include "aitw/base/log.hpp"
#include "codec.hpp"

namespace aitw::history {
namespace {

// While the store is down it is asked again this often (each attempt may wait for its own timeouts).
constexpr auto kRetryEvery = std::chrono::seconds(2);
constexpr std::size_t kSpoolBatch = 500;  // records per write when the spool is sent

std::uint64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

}  // namespace

Recorder::Recorder(std::unique_ptr<Sink> sink, RecorderOptions options)
    : sink_(std::move(sink)), opt_(std::move(options)), started_ms_(net::unix_ms()) {
  run_id_ = std::to_string(started_ms_);
  // Records spooled by an earlier run that ended while the store was down: sent first.
  if (!opt_.spool_path.empty() && std::filesystem::exists(opt_.spool_path))
    spooled_ = count_lines(opt_.spool_path);
  thread_ = std::thread([this] { loop(); });
}

Recorder::~Recorder() {
  stop();
}

void Recorder::session_ended(const net::SessionRecord& r) {
  std::lock_guard lock(mu_);
  if (sessions_.size() + events_.size() >= opt_.queue_max) {
    ++dropped_;
    return;
  }
  sessions_.push_back({opt_.worker_id + "/" + run_id_ + "/" + std::to_string(r.session), opt_.worker_id, r});
}

void Recorder::model_event(const net::ModelEvent& e) {
  std::lock_guard lock(mu_);
  if (sessions_.size() + events_.size() >= opt_.queue_max) {
    ++dropped_;
    return;
  }
  events_.push_back(
      {opt_.worker_id + "/" + run_id_ + "/" + std::to_string(next_event_++), opt_.worker_id, e});
}

void Recorder::stop(const std::string& final_state) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || !thread_.joinable()) return;
    stopping_ = true;
    final_state_ = final_state;
  }
  cv_.notify_all();
  thread_.join();
}

void Recorder::loop() {
  auto retry_at = std::chrono::steady_clock::now();
  for (;;) {
    bool final;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, opt_.flush_interval, [this] { return stopping_; });
      final = stopping_;
    }
    Batch b;
    {
      std::lock_guard lock(mu_);
      b.sessions.assign(sessions_.begin(), sessions_.end());
      b.events.assign(events_.begin(), events_.end());
      sessions_.clear();
      events_.clear();
    }
    const auto now = std::chrono::steady_clock::now();
    if (opt_.worker_snapshot && (final || now >= next_worker_)) {
      auto w = opt_.worker_snapshot();
      w.worker_id = opt_.worker_id;
      w.started_ms = started_ms_;
      w.last_seen_ms = net::unix_ms();
      if (final) w.state = final_state_;
      b.workers.push_back(std::move(w));
      next_worker_ = now + opt_.worker_interval;
    }
    // In an outage the store is only asked every kRetryEvery (and once more at the end); meanwhile the
    // records go straight to the spool.
    if (!down_ || final || now >= retry_at) {
      try {
        if (spooled_ > 0) send_spool();
        if (!b.empty()) sink_->write(b);
        written_ += b.sessions.size() + b.events.size();
        if (down_) log_info("history: " + sink_->describe() + " is back; the spooled records were sent");
        down_ = false;
        b = {};
      } catch (const std::exception& e) {
        outage(e.what());
        retry_at = std::chrono::steady_clock::now() + kRetryEvery;
      }
    }
    if (!b.sessions.empty() || !b.events.empty()) spool(b);
    if (final) return;
  }
}

void Recorder::outage(const std::string& why) {
  if (down_) return;
  down_ = true;
  log_warn("history: cannot write to " + sink_->describe() + " (" + why +
           "): " + (opt_.spool_path.empty() ? "records are dropped" : "spooling to " + opt_.spool_path) +
           " until it answers");
}

void Recorder::spool(const Batch& b) {
  const std::uint64_t n = b.sessions.size() + b.events.size();
  if (opt_.spool_path.empty()) {
    dropped_ += n;
    return;
  }
  std::error_code ec;
  const auto size =
      std::filesystem::exists(opt_.spool_path, ec) ? std::filesystem::file_size(opt_.spool_path, ec) : 0;
  std::ofstream out(opt_.spool_path, std::ios::app);
  std::uint64_t bytes = ec ? 0 : size, kept = 0;
  const auto put = [&](const nlohmann::json& line) {
    const std::string text = line.dump() + "\n";
    if (!out || bytes + text.size() > opt_.spool_max_bytes) return;
    out << text;
    bytes += text.size();
    ++kept;
  };
  for (const auto& s : b.sessions) put({{"session", to_json(s)}});
  for (const auto& e : b.events) put({{"event", to_json(e)}});
  out.flush();
  if (!out) kept = 0;
  spooled_ += kept;
  dropped_ += n - kept;
}

// Throws what the store throws: the spool stays as it is (what was sent is upserted again next time).
bool Recorder::send_spool() {
  std::ifstream in(opt_.spool_path);
  Batch chunk;
  const auto send = [&] {
    if (chunk.empty()) return;
    sink_->write(chunk);
    written_ += chunk.sessions.size() + chunk.events.size();
    chunk = {};
  };
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("session"))
        chunk.sessions.push_back(session_from_json(j["session"]));
      else
        chunk.events.push_back(event_from_json(j.at("event")));
    } catch (const nlohmann::json::exception&) {
      ++dropped_;  // a line cut by a crash mid-write: the rest of the spool is still good
      continue;
    }
    if (chunk.sessions.size() + chunk.events.size() >= kSpoolBatch) send();
  }
  send();
  in.close();
  std::error_code ec;
  std::filesystem::remove(opt_.spool_path, ec);
  spooled_ = 0;
  return true;
}

}  // namespace aitw::history
