#pragma once
// The shared token of `aitw serve --auth-token-file` and `aitw replay --auth-token-file` (private to jobs/).
#include <optional>
#include <string>

namespace aitw::jobs {

// The file's first line, surrounding whitespace trimmed; nullopt, with the cause logged, when the file cannot
// be read or holds no token. Warns when others may read the file. The token itself is never logged.
std::optional<std::string> load_token_file(const std::string& path);

}  // namespace aitw::jobs
