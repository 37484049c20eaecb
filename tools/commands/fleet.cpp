// aitw fleet: the workers of the fleet inventory, with their state and last_seen (history::print_fleet).
#include <iostream>
#include <memory>

#include "aitw/history/report.hpp"
#include "commands.hpp"

namespace aitw::tools {

Command add_fleet(CLI::App& app) {
  auto job = std::make_shared<history::ReportJob>();
  auto* cmd = app.add_subcommand(
      "fleet", "List the workers (fleet inventory): state, last_seen, models loaded, sessions");
  cmd->add_option("--history", job->uri, kHistoryHelp);
  cmd->add_flag("--json", job->json, "JSON instead of a table");
  return {cmd, [job] { return history::print_fleet(*job, std::cout, std::cerr); }};
}

}  // namespace aitw::tools
