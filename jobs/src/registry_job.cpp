#include "aitw/jobs/registry.hpp"

#include <fstream>
#include <iomanip>
#include <ostream>

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

}  // namespace aitw::jobs
