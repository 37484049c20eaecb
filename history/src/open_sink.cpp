// Which Sink a URI names, where the default lives, and how a URI is shown in logs.
#include <cstdlib>
#include <stdexcept>

#include "aitw/history/history.hpp"
#include "mongo_sink.hpp"
#include "sqlite_sink.hpp"

namespace aitw::history {

std::string default_sqlite_path() {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state && *state) return std::string(state) + "/aitw/history.db";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/state/aitw/history.db";
}

std::string resolve_uri(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("AITW_HISTORY"); env && *env) return env;
  return "sqlite:" + default_sqlite_path();
}

std::unique_ptr<Sink> open_sink(const std::string& uri, const SinkOptions& options) {
  if (uri == "none") return nullptr;
  if (uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://"))
    return std::make_unique<MongoSink>(uri, options);
  std::string path = uri.starts_with("sqlite:") ? uri.substr(7) : uri;
  if (path.starts_with("//")) path = path.substr(2);  // sqlite:///abs/path
  if (path.empty() || path.find("://") != std::string::npos)
    throw std::invalid_argument("history URI '" + mongodb::redact_uri(uri) +
                                "': expected none, sqlite:PATH, a file path or mongodb://HOST:PORT/DB");
  return std::make_unique<SqliteSink>(path, options);
}

}  // namespace aitw::history
