// aitw serve: the worker until SIGTERM/SIGINT (jobs::run_serve).
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

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

// The seed container's variables, below the AITW_* ones and the flags: BIND_HOST and BIND_PORT (either
// alone keeps the other of the default 127.0.0.1:7070), IDLE_TIMEOUT_SEC (seconds). False (after saying
// why) on a bad value.
bool seed_env(const CLI::App& serve, jobs::ServeJob& job) {
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v && *v ? std::optional<std::string>(v) : std::nullopt;
  };
  net::ServerConfig& sc = job.server;
  const auto host = env("BIND_HOST"), port = env("BIND_PORT");
  if (serve.get_option("--listen")->count() == 0 && (host || port)) {
    const std::string spec = (host ? *host : sc.host) + ":" + (port ? *port : std::to_string(sc.port));
    std::string error;
    const auto at = parse_host_port(spec, &error);
    if (!at) {
      std::cerr << "aitw serve: BIND_HOST/BIND_PORT '" << spec << "': " << error << "\n";
      return false;
    }
    sc.host = at->host;
    sc.port = at->port;
  }
  if (const auto idle = env("IDLE_TIMEOUT_SEC"); idle && serve.get_option("--idle-timeout")->count() == 0) {
    std::string error;
    const auto d = jobs::parse_duration(*idle, &error);
    if (!d) {
      std::cerr << "aitw serve: IDLE_TIMEOUT_SEC '" << *idle << "': " << error << "\n";
      return false;
    }
    sc.idle_timeout = *d;
  }
  return true;
}

}  // namespace

Command add_serve(CLI::App& app, GlobalFlags& global) {
  auto job = std::make_shared<jobs::ServeJob>();
  net::ServerConfig& sc = job->server;
  auto* serve = app.add_subcommand(
      "serve",
      "Run the worker: TCP + protobuf protocol (uint32LE length + Envelope), sessions, window 1.\n"
      "SIGTERM/SIGINT drain it: /readyz answers 503 at once, a new Init gets Error 13 (draining),\n"
      "each session gets End(\"draining\") after its frame in flight; --drain-timeout bounds it; exit 0.\n"
      "Every flag can also be set from the environment variable shown (Env:...); a flag given wins.\n"
      "The seed container's BIND_HOST, BIND_PORT and IDLE_TIMEOUT_SEC are read too, below AITW_*.");
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
      ->envname("AITW_LISTEN")
      ->check(kHostPort);
  serve
      ->add_option_function<std::string>(
          "--idle-timeout", [&sc](const std::string& s) { sc.idle_timeout = *jobs::parse_duration(s); },
          "unload models after this long with no session (e.g. 60s, 500ms)")
      ->default_str("60s")
      ->envname("AITW_IDLE_TIMEOUT")
      ->check(kDuration);
  serve
      ->add_option_function<std::string>(
          "--heartbeat-timeout",
          [&sc](const std::string& s) { sc.heartbeat_timeout = *jobs::parse_duration(s); },
          "drop a peer silent for this long, or one that has not read what it was sent for this long")
      ->default_str("10s")
      ->envname("AITW_HEARTBEAT_TIMEOUT")
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
      ->envname("AITW_MAX_SESSION_AGE")
      ->check(kDurationOrOff);
  serve
      ->add_option_function<std::string>(
          "--drain-timeout", [&sc](const std::string& s) { sc.drain_timeout = *jobs::parse_duration(s); },
          "on SIGTERM/SIGINT, wait this long for sessions to finish their frame and get End(\"draining\");\n"
          "then close what is left and exit 0")
      ->default_str("10s")
      ->envname("AITW_DRAIN_TIMEOUT")
      ->check(kDuration);
  serve->add_option("--max-sessions", sc.max_sessions, "concurrent sessions")
      ->capture_default_str()
      ->envname("AITW_MAX_SESSIONS");
  serve->add_option("--max-frame-bytes", sc.max_frame_bytes, "largest accepted message")
      ->capture_default_str()
      ->envname("AITW_MAX_FRAME_BYTES");
  serve
      ->add_option("--max-queued-bytes", sc.max_queued_bytes,
                   "close a peer whose unsent replies exceed this (it sends but does not read)")
      ->capture_default_str()
      ->envname("AITW_MAX_QUEUED_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  serve->add_option("--nets", sc.nets, "network instances per model")
      ->capture_default_str()
      ->envname("AITW_NETS");
  add_precision_flag(*serve, sc.precision);
  serve->add_option("--threads", sc.threads, "OpenCV threads per network")
      ->capture_default_str()
      ->envname("AITW_THREADS");
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
      ->envname("AITW_AUTH_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  serve
      ->add_option_function<std::string>(
          "--metrics", [job](const std::string& s) { job->metrics = parse_host_port(s); },
          "HOST:PORT for HTTP /metrics (Prometheus), /healthz, /readyz")
      ->envname("AITW_METRICS")
      ->check(kHostPort);
  serve->add_option(
      "--history", job->history.uri,
      "where session records, model events and this worker's inventory record go: none,\n"
      "sqlite:PATH (or a path), mongodb://[USER:PASS@]HOST:PORT/DB (credentials never logged).\n"
      "Default $AITW_HISTORY, else sqlite:$XDG_STATE_HOME/aitw/history.db\n"
      "(~/.local/state/aitw/history.db)");
  serve
      ->add_option("--worker-id", job->history.worker_id,
                   "this worker's id in the history and `aitw fleet` (default HOST:PORT: the host name and\n"
                   "the port served)")
      ->envname("AITW_WORKER_ID");
  serve
      ->add_option_function<std::string>(
          "--history-retention",
          [job](const std::string& s) {
            job->history.retention =
                std::chrono::duration_cast<std::chrono::seconds>(*jobs::parse_duration(s));
          },
          "keep model events this long (a TTL index on MongoDB; expired at start-up on SQLite)")
      ->default_str("30d")
      ->envname("AITW_HISTORY_RETENTION")
      ->check(kDuration);
  return {serve, [job, serve] {
            if (!seed_env(*serve, *job)) return 2;
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
