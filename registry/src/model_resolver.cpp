#include "aitw/registry/model_resolver.hpp"

#include <memory>
#include <mutex>

#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/registry/registry.hpp"

namespace aitw::registry {

void install_model_resolver(const std::string& uri) {
  // One registry for the life of the process, so that its circuit breaker remembers an outage across
  // resolutions (Init after Init); resolutions are serialised.
  struct Shared {
    std::mutex mu;
    std::string uri;
    std::unique_ptr<Registry> registry;
  };
  auto shared = std::make_shared<Shared>();
  shared->uri = uri.empty() ? default_registry_uri() : uri;
  model::set_model_resolver([shared](const std::string& spec) -> std::optional<std::string> {
    const auto ref = parse_ref(spec);
    if (!ref) return std::nullopt;
    std::lock_guard lock(shared->mu);
    try {
      if (!shared->registry) shared->registry = std::make_unique<Registry>(open_store(shared->uri));
      const auto r = resolve(*shared->registry, *ref);
      aitw::log_info("model " + spec + " -> " + r.manifest.value("name", "") + "@" +
                     std::to_string(r.manifest.value("version", 0)) + " sha256 " +
                     r.manifest.value("sha256", "").substr(0, 12) + (r.from_cache_only ? " (cached)" : "") +
                     " from " + shared->registry->store().describe());
      return r.path;
    } catch (const RegistryError& e) {
      // The model folders were searched before the registry (model::resolve_model_path): a bare name the
      // registry does not know either is reported with them; any other failure says why the registry could
      // not help, and resolve_model_path adds the folders it tried.
      if (!ref->version && e.kind() == RegistryError::Kind::NotFound) return std::nullopt;
      throw model::ModelError(std::string("registry: ") + e.what());
    }
  });
}

}  // namespace aitw::registry
