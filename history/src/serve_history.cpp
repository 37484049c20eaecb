#include "aitw/history/serve_history.hpp"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <mutex>
#include <vector>

#include "aitw/base/log.hpp"
#include "aitw/history/recorder.hpp"

namespace aitw::history {

// Shared with the server's callbacks (io thread): until attach() the records wait here.
struct ServeHistory::State {
  ServeHistoryOptions options;
  std::unique_ptr<Sink> sink;
  std::mutex mu;
  std::unique_ptr<Recorder> recorder;
  std::vector<net::SessionRecord> early_sessions;
  std::vector<net::ModelEvent> early_events;
};

namespace {

std::string host_name() {
  char buf[256] = {};
  return gethostname(buf, sizeof buf - 1) == 0 ? buf : "localhost";
}

// The spool lives beside the default database, one file per worker id.
std::string spool_path(const std::string& worker_id) {
  std::string name;
  for (char c : worker_id)
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return (std::filesystem::path(default_sqlite_path()).parent_path() / ("history-spool-" + name + ".jsonl"))
      .string();
}

}  // namespace

ServeHistory::ServeHistory(std::shared_ptr<State> state) : state_(std::move(state)) {}

ServeHistory::~ServeHistory() {
  stop();
}

std::unique_ptr<ServeHistory> ServeHistory::open(const ServeHistoryOptions& options,
                                                 net::ServerConfig& config) {
  const std::string uri = resolve_uri(options.uri);
  if (uri == "none") return nullptr;
  auto st = std::make_shared<State>();
  st->options = options;
  try {
    st->sink = open_sink(uri, SinkOptions{options.retention});
  } catch (const SinkError& e) {
    log_error(std::string(e.what()) + ": serving without history");
    return nullptr;
  }
  config.on_session_end = [st](const net::SessionRecord& r) {
    std::lock_guard lock(st->mu);
    if (st->recorder)
      st->recorder->session_ended(r);
    else
      st->early_sessions.push_back(r);
  };
  config.on_model_event = [st](const net::ModelEvent& e) {
    std::lock_guard lock(st->mu);
    if (st->recorder)
      st->recorder->model_event(e);
    else
      st->early_events.push_back(e);
  };
  return std::unique_ptr<ServeHistory>(new ServeHistory(st));
}

void ServeHistory::attach(const net::Server& server) {
  auto& st = *state_;
  RecorderOptions o;
  o.worker_id =
      st.options.worker_id.empty() ? host_name() + ":" + std::to_string(server.port()) : st.options.worker_id;
  o.spool_path = spool_path(o.worker_id);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(o.spool_path).parent_path(), ec);
  o.worker_snapshot = [&server, host = host_name()] {
    const auto s = server.stats();
    WorkerRecord w;
    w.host = host;
    w.version = AITW_VERSION;
    w.state = net::to_string(s.state);
    w.models_loaded = s.models_loaded;
    w.sessions_active = s.connections_active;
    w.sessions_total = s.connections_total;
    return w;
  };
  log_info("history: " + st.sink->describe() + " (worker id " + o.worker_id + ")");
  std::lock_guard lock(st.mu);
  st.recorder = std::make_unique<Recorder>(std::move(st.sink), std::move(o));
  for (const auto& r : st.early_sessions) st.recorder->session_ended(r);
  for (const auto& e : st.early_events) st.recorder->model_event(e);
  st.early_sessions.clear();
  st.early_events.clear();
}

std::string ServeHistory::metrics_text() const {
  std::uint64_t spooled = 0, dropped = 0;
  {
    std::lock_guard lock(state_->mu);
    if (state_->recorder) {
      spooled = state_->recorder->spooled();
      dropped = state_->recorder->dropped_total();
    }
  }
  return "# HELP history_spooled History records waiting in the spool file for the store\n"
         "# TYPE history_spooled gauge\nhistory_spooled " +
         std::to_string(spooled) +
         "\n# HELP history_dropped_total History records lost (queue or spool full)\n"
         "# TYPE history_dropped_total counter\nhistory_dropped_total " +
         std::to_string(dropped) + "\n";
}

void ServeHistory::stop() {
  std::unique_ptr<Recorder> r;
  {
    std::lock_guard lock(state_->mu);
    r = std::move(state_->recorder);
  }
  if (r) r->stop();
}

}  // namespace aitw::history
