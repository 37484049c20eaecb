#pragma once
// Running a command line (the aitw binary, as a user would) and capturing what it printed and how it
// ended.
#include <filesystem>
#include <string>

namespace aitw::testing {

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + the signal that ended it
  std::string out, err;
};

// `command` through /bin/sh: stdout through a pipe, stderr through a scratch file (so the two never
// block each other).
CommandResult run_command(const std::string& command);

// The whole file ("" when it cannot be read).
std::string slurp(const std::filesystem::path& path);

}  // namespace aitw::testing
