// aitw health: a protocol-level probe of a worker (net::probe_health), for container HEALTHCHECKs.
#include <iostream>
#include <memory>

#include "aitw/base/host_port.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "aitw/net/health.hpp"
#include "commands.hpp"

namespace aitw::tools {

Command add_health(CLI::App& app) {
  struct Flags {
    std::string server = "127.0.0.1:7070";
    std::string timeout = "2s";
  };
  auto f = std::make_shared<Flags>();
  auto* health = app.add_subcommand(
      "health",
      "Probe a worker: connect, send a Heartbeat, wait for its echo (no Init, no model loaded).\n"
      "Exit 0 when it answers; 1 with the reason on stderr (refused, timeout, bad reply).");
  health->add_option("--server", f->server, "the worker's HOST:PORT")
      ->capture_default_str()
      ->check(kHostPort);
  health->add_option("--timeout", f->timeout, "for the whole probe: connect and round trip (e.g. 2s, 500ms)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& s) {
            std::string error;
            return jobs::parse_duration(s, &error) ? std::string() : error;
          },
          "DURATION"));
  return {health, [f] {
            const auto at = *parse_host_port(f->server);
            const auto r = net::probe_health(at.host, at.port, *jobs::parse_duration(f->timeout));
            if (!r.ok) {
              std::cerr << "aitw health: " << f->server << ": " << r.reason << "\n";
              return 1;
            }
            std::cout << f->server << ": ok (heartbeat round trip " << r.round_trip_ms << " ms)\n";
            return 0;
          }};
}

}  // namespace aitw::tools
