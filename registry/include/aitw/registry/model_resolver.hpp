#pragma once
// The resolver that lets --model / Init.model name registry models (name, name@version).
#include <string>

namespace aitw::registry {

// Installs model::set_model_resolver: name[@version] found in the registry -> its verified cached file.
// The registry is asked last, after the local model folders (model/lookup.hpp).
void install_model_resolver(const std::string& uri = "");

}  // namespace aitw::registry
