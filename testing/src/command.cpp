#include "aitw/testing/command.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace aitw::testing {
namespace fs = std::filesystem;

CommandResult run_command(const std::string& command) {
  static std::atomic<int> calls{0};
  const fs::path err_file = fs::temp_directory_path() /
                            ("aitw_test_stderr_" + std::to_string(getpid()) + "_" + std::to_string(calls++));
  CommandResult r;
  FILE* p = popen((command + " 2>" + err_file.string()).c_str(), "r");
  if (p == nullptr) {
    r.err = "popen failed for: " + command;
    return r;
  }
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = slurp(err_file);
  std::error_code ec;
  fs::remove(err_file, ec);
  return r;
}

std::string slurp(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace aitw::testing
