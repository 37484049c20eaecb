#include "aitw/jobs/registry.hpp"

#include <fstream>
#include <iomanip>
#include <ostream>

<<<<<<< HEAD:jobs/src/registry_job.cpp
=======
#include "aitw/model/lookup.hpp"
#include "aitw/base/log.hpp"
>>>>>>> h-model:registry/src/cli.cpp
#include "aitw/registry/registry.hpp"

namespace aitw::jobs {
using registry::parse_ref;
using registry::Registry;
using registry::RegistryError;

int run_registry_command(const RegistryCommand& c, std::ostream& out, std::ostream& err) {
  try {
    Registry reg(registry::open_store(c.uri.empty() ? registry::default_registry_uri() : c.uri));
    if (c.action == "push") {
      const auto m = reg.push(c.file, c.name, c.version, c.labels);
      out << "pushed " << m["name"].get<std::string>() << "@" << m["version"] << " sha256 "
          << m["sha256"].get<std::string>().substr(0, 12) << " (" << m["size"] << " bytes) to "
          << reg.store().describe() << "\n";
    } else if (c.action == "list") {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& n : reg.names()) {
        if (!c.name.empty() && n != c.name) continue;
        const auto latest = reg.manifest({n, std::nullopt})["version"].get<std::int64_t>();
        for (auto v : reg.versions(n)) {
          const auto m = reg.manifest({n, v});
          rows.push_back({{"name", n},
                          {"version", v},
                          {"latest", v == latest},
                          {"sha256", m["sha256"]},
                          {"size", m["size"]},
                          {"source", m.value("source", "")}});
        }
      }
      if (c.json) {
        out << rows.dump(2) << "\n";
      } else {
        out << std::left << std::setw(24) << "NAME" << std::setw(9) << "VERSION" << std::setw(8) << "LATEST"
            << std::setw(14) << "SHA256" << std::setw(12) << "SIZE"
            << "SOURCE\n";
        for (const auto& r : rows)
          out << std::left << std::setw(24) << r["name"].get<std::string>() << std::setw(9)
              << r["version"].get<std::int64_t>() << std::setw(8) << (r["latest"].get<bool>() ? "*" : "")
              << std::setw(14) << r["sha256"].get<std::string>().substr(0, 12) << std::setw(12)
              << r["size"].get<std::uint64_t>() << r["source"].get<std::string>() << "\n";
      }
    } else if (c.action == "show" || c.action == "pull" || c.action == "rm") {
      const auto ref = parse_ref(c.ref);
      if (!ref) throw RegistryError("'" + c.ref + "' is not a model reference (name or name@version)");
      if (c.action == "rm" && !ref->version)
        throw RegistryError("rm needs an explicit version: name@version");
      const auto m = reg.manifest(*ref);
      if (c.action == "show") {
        out << m.dump(2) << "\n";
      } else if (c.action == "pull") {
        const std::string path = c.out.empty() ? registry::resolve(reg, *ref).path : c.out;
        if (!c.out.empty()) {
          const std::string bytes = reg.fetch(m);
          std::ofstream f(c.out, std::ios::binary | std::ios::trunc);
          f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
          if (!f) throw RegistryError("cannot write " + c.out);
        }
        out << path << "\n";
      } else {
        reg.remove(ref->name, *ref->version);
        out << "removed " << ref->name << "@" << *ref->version << "\n";
      }
    } else {
      throw RegistryError("unknown action '" + c.action + "'");
    }
    return 0;
  } catch (const std::exception& e) {
    err << "aitw registry: " << e.what() << "\n";
    return 2;
  }
}

<<<<<<< HEAD:jobs/src/registry_job.cpp
}  // namespace aitw::jobs
=======
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
>>>>>>> h-model:registry/src/cli.cpp
