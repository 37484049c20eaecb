#include "aitw/base/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace aitw {
namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};
std::mutex g_mutex;
}  // namespace

void set_log_level(LogLevel level) {
  g_level = level;
}
LogLevel log_level() {
  return g_level;
}

void log_message(LogLevel level, const std::string& message) {
  if (level < g_level.load()) return;
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "aitw [%s] %s\n", names[static_cast<int>(level)], message.c_str());
}

}  // namespace aitw
