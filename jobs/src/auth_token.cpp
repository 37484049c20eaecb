#include "auth_token.hpp"

#include <sys/stat.h>

#include <fstream>

#include "aitw/base/log.hpp"

namespace aitw::jobs {

std::optional<std::string> load_token_file(const std::string& path) {
  std::ifstream f(path);
  std::string token;
  if (!f || !std::getline(f, token)) {
    log_error("--auth-token-file: cannot read " + path);
    return std::nullopt;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  if (token.empty()) {
    log_error("--auth-token-file: " + path + " holds no token");
    return std::nullopt;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077))
    log_warn("--auth-token-file " + path + " is readable by others (chmod 600 it)");
  return token;
}

}  // namespace aitw::jobs
