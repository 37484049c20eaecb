#pragma once
// The history of one `aitw serve`: the Recorder fed by the server's callbacks (session ends, model events)
// and by its stats (the worker's inventory record), and the history metrics for /metrics.
#include <chrono>
#include <memory>
#include <string>

#include "aitw/net/server.hpp"

namespace aitw::history {

struct ServeHistoryOptions {
  std::string uri;        // --history: "" = $AITW_HISTORY or the default SQLite file; "none" = off
  std::string worker_id;  // --worker-id: "" = HOST:PORT (the host name and the port served)
  std::chrono::seconds retention{std::chrono::hours(24 * 30)};  // --history-retention: events' TTL
};

class ServeHistory {
 public:
  // Installs the callbacks into `config` (before the Server is made from it). nullptr when history is off.
  // Throws std::invalid_argument naming the (redacted) URI when it is malformed; a store that cannot be
  // opened is logged and history is off (serving does not depend on it).
  static std::unique_ptr<ServeHistory> open(const ServeHistoryOptions& options, net::ServerConfig& config);
  ~ServeHistory();
  // The server is listening: records start flowing (those of sessions that ended before are kept).
  void attach(const net::Server& server);
  // Prometheus text: history_spooled (gauge), history_dropped_total (counter).
  std::string metrics_text() const;
  // Writes what is left and the worker's record as STOPPED (after the server has stopped).
  void stop();

  struct State;

 private:
  explicit ServeHistory(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace aitw::history
