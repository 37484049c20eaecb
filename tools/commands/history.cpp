// aitw history [stats]: read the execution history (history::print_sessions / print_stats).
#include <iostream>
#include <memory>

#include "aitw/history/report.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "aitw/net/records.hpp"
#include "commands.hpp"

namespace aitw::tools {

const char* const kHistoryHelp =
    "the history to read: sqlite:PATH (or a path), mongodb://HOST:PORT/DB (default $AITW_HISTORY, else\n"
    "sqlite:$XDG_STATE_HOME/aitw/history.db, where `aitw serve` writes by default)";

namespace {

// --since 1h etc.: sessions that ended in that window (jobs::parse_duration).
const CLI::Validator kSince(
    [](std::string& s) {
      std::string error;
      return jobs::parse_duration(s, &error) ? std::string() : error;
    },
    "DURATION");

void add_filters(CLI::App& cmd, history::ReportJob& job) {
  cmd.add_option("--history", job.uri, kHistoryHelp);
  cmd.add_option_function<std::string>(
         "--since",
         [&job](const std::string& s) {
           job.query.since_ms = net::unix_ms() - jobs::parse_duration(s)->count();
         },
         "only sessions that ended within this long (e.g. 1h, 30m, 7d; default: all)")
      ->check(kSince);
  cmd.add_option("--model", job.query.model, "only sessions on this model reference (as the client asked)");
  cmd.add_option("--client", job.query.client, "only sessions of this client id (Init.client_id)");
  cmd.add_flag("--json", job.json, "JSON instead of a table");
}

}  // namespace

Command add_history(CLI::App& app) {
  auto job = std::make_shared<history::ReportJob>();
  auto stats_job = std::make_shared<history::ReportJob>();
  auto* cmd = app.add_subcommand(
      "history",
      "List the sessions workers served, newest first (from the execution history `aitw serve` keeps)");
  add_filters(*cmd, *job);
  cmd->add_option("--limit", job->query.limit, "at most this many sessions")->capture_default_str();
  auto* stats = cmd->add_subcommand(
      "stats", "Per model and client: sessions, frames, drop %, worst p95 (over the same filters)");
  add_filters(*stats, *stats_job);
  return {cmd, [job, stats_job, stats] {
            if (stats->parsed()) return history::print_stats(*stats_job, std::cout, std::cerr);
            return history::print_sessions(*job, std::cout, std::cerr);
          }};
}

}  // namespace aitw::tools
