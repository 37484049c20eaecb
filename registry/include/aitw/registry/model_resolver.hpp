#pragma once
// The resolver that lets --model / Init.model name registry models (name, name@version).
#include <string>

namespace aitw::registry {

// Installs pipeline::set_model_resolver: name[@version] found in the registry -> its verified cached file.
// An unreachable registry is logged and falls back to the local model folders.
void install_model_resolver(const std::string& uri = "");

}  // namespace aitw::registry
