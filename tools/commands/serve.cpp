// aitw serve: the worker until SIGTERM/SIGINT (jobs::run_serve).
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "aitw/base/host_port.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "aitw/jobs/serve.hpp"
#include "aitw/model/lookup.hpp"
#include "commands.hpp"

namespace aitw::tools {
namespace {

// 60s, 500ms, 2m; seconds without a unit (jobs::parse_duration).
const CLI::Validator kDuration(
    [](std::string& s) {
      std::string error;
      return jobs::parse_duration(s, &error) ? std::string() : error;
    },
    "DURATION");

// The same, or 0 for "off".
const CLI::Validator kDurationOrOff(
    [](std::string& s) {
      std::string error;
      return s == "0" || jobs::parse_duration(s, &error) ? std::string() : error + " (or 0 for off)";
    },
    "DURATION");

}  // namespace

Command add_serve(CLI::App& app, GlobalFlags& global) {
  auto job = std::make_shared<jobs::ServeJob>();
  net::ServerConfig& sc = job->server;
  auto* serve = app.add_subcommand(
      "serve",
      "Run the worker: TCP + protobuf protocol (uint32LE length + Envelope), sessions, window 1.\n"
      "Stops gracefully on SIGTERM/SIGINT: frames inside are answered, sessions get End, exit 0.");
  serve
      ->add_option_function<std::string>(
          "--listen",
          [&sc](const std::string& s) {
            const auto at = *parse_host_port(s);  // checked by kHostPort
            sc.host = at.host;
            sc.port = at.port;
          },
          "HOST:PORT (loopback unless told otherwise)")
      ->default_str("127.0.0.1:7070")
      ->check(kHostPort);
  serve
      ->add_option_function<std::string>(
          "--idle-timeout", [&sc](const std::string& s) { sc.idle_timeout = *jobs::parse_duration(s); },
          "unload models after this long with no session (e.g. 60s, 500ms)")
      ->default_str("60s")
      ->check(kDuration);
  serve
      ->add_option_function<std::string>(
          "--heartbeat-timeout",
          [&sc](const std::string& s) { sc.heartbeat_timeout = *jobs::parse_duration(s); },
          "drop a peer silent for this long")
      ->default_str("10s")
      ->check(kDuration);
  serve
      ->add_option_function<std::string>(
          "--max-session-age",
          [&sc](const std::string& s) {
            sc.max_session_age = s == "0" ? std::chrono::milliseconds(0) : *jobs::parse_duration(s);
          },
          "end a session older than this (from its first InitOk) plus a random 0-25 % of it, after the\n"
          "Result of its frame in flight, with End \"max_session_age\"; the client reconnects at once,\n"
          "so a balancer (HAProxy, a Kubernetes Service) places it anew and a restarted worker gets its\n"
          "share back (gRPC's MAX_CONNECTION_AGE; e.g. 10m in production). 0 = never")
      ->default_str("0")
      ->check(kDurationOrOff);
  serve->add_option("--max-sessions", sc.max_sessions, "concurrent sessions")->capture_default_str();
  serve->add_option("--max-frame-bytes", sc.max_frame_bytes, "largest accepted message")
      ->capture_default_str();
  serve->add_option("--nets", sc.nets, "network instances per model")->capture_default_str();
  serve->add_option("--threads", sc.threads, "OpenCV threads per network")->capture_default_str();
  add_registry_flag(*serve, global);
  serve
      ->add_option("--model-dir", sc.model_dirs,
                   "allow Init.model paths inside DIR (repeatable; default $AITW_MODEL_DIR if set). Names\n"
                   "(name, name@version) are always allowed, and looked up in DIR first; other paths, `..`\n"
                   "and symlinks out are refused")
      ->check(CLI::ExistingDirectory);
  serve
      ->add_option("--auth-token-file", job->auth_token_file,
                   "require Init.auth_token to equal the token in FILE (constant-time compare; a mismatch\n"
                   "is an Error and the connection is closed)")
      ->check(CLI::ExistingFile);
  serve
      ->add_option_function<std::string>(
          "--metrics", [job](const std::string& s) { job->metrics = parse_host_port(s); },
          "HOST:PORT for HTTP /metrics (Prometheus), /healthz, /readyz")
      ->check(kHostPort);
  serve->add_option(
      "--history", job->history.uri,
      "where session records, model events and this worker's inventory record go: none,\n"
      "sqlite:PATH (or a path), mongodb://[USER:PASS@]HOST:PORT/DB (credentials never logged).\n"
      "Default $AITW_HISTORY, else sqlite:$XDG_STATE_HOME/aitw/history.db\n"
      "(~/.local/state/aitw/history.db)");
  serve->add_option("--worker-id", job->history.worker_id,
                    "this worker's id in the history and `aitw fleet` (default HOST:PORT: the host name and\n"
                    "the port served)");
  serve
      ->add_option_function<std::string>(
          "--history-retention",
          [job](const std::string& s) {
            job->history.retention =
                std::chrono::duration_cast<std::chrono::seconds>(*jobs::parse_duration(s));
          },
          "keep model events this long (a TTL index on MongoDB; expired at start-up on SQLite)")
      ->default_str("30d")
      ->check(kDuration);
  return {serve, [job] {
            // --model-dir defaults to $AITW_MODEL_DIR, when that is a directory.
            auto& dirs = job->server.model_dirs;
            model::set_model_dirs(dirs);  // names too are looked up there first
            if (dirs.empty())
              if (const char* d = std::getenv("AITW_MODEL_DIR"); d && *d && std::filesystem::is_directory(d))
                dirs.push_back(d);
            return jobs::run_serve(*job);
          }};
}

}  // namespace aitw::tools
