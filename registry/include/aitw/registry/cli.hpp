#pragma once
// `aitw registry push|list|show|pull|rm` and the resolver that lets --model / Init.model name registry
// models.
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>

namespace aitw::registry {

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

// Installs model::set_model_resolver: name[@version] found in the registry -> its verified cached file.
// The registry is asked last, after the local model folders (model/lookup.hpp).
void install_model_resolver(const std::string& uri = "");

}  // namespace aitw::registry
