#pragma once
// Minimal leveled logging to stderr, so stdout stays machine-readable (JSON lines).
#include <string>

namespace aitw {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);
inline void log_debug(const std::string& m) {
  log_message(LogLevel::Debug, m);
}
inline void log_info(const std::string& m) {
  log_message(LogLevel::Info, m);
}
inline void log_warn(const std::string& m) {
  log_message(LogLevel::Warn, m);
}
inline void log_error(const std::string& m) {
  log_message(LogLevel::Error, m);
}

}  // namespace aitw
