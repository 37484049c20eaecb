#pragma once
// `aitw registry push|list|show|pull|rm`: one action on a model registry, printed for a person (or as JSON).
// Letting --model / Init.model name registry models is the registry's own: aitw/registry/model_resolver.hpp.
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>

namespace aitw::jobs {

struct RegistryCommand {
  std::string action;  // push, list, show, pull, rm
  std::string uri;     // empty = default_registry_uri()
  std::string file, name, ref, out;
  std::optional<std::int64_t> version;
  std::map<std::string, std::string> labels;
  bool json = false;
};

// 0, or 2 with one clear error line on `err`.
int run_registry_command(const RegistryCommand& cmd, std::ostream& out, std::ostream& err);

}  // namespace aitw::jobs
