// aitw replay: a source offered to a worker by N clients, and their report (jobs::run_replay).
#include <iostream>
#include <memory>

#include "aitw/jobs/replay.hpp"
#include "commands.hpp"

namespace aitw::tools {
namespace {

const CLI::Validator kHostPortList(
    [](std::string& s) {
      std::string error;
      return jobs::parse_endpoints(s, &error) ? std::string() : error;
    },
    "HOST:PORT[,HOST:PORT...]");

}  // namespace

Command add_replay(CLI::App& app, GlobalFlags& global) {
  auto rp = std::make_shared<jobs::ReplayOptions>();
  auto* replay = app.add_subcommand(
      "replay",
      "Offer a recording, image directory or video to a worker at a fixed rate through the client and\n"
      "report latency, drops and throughput; without --server an in-process worker on loopback is used");
  // Not CLI::ExistingPath: a list IMAGE,IMAGE is recorded on the fly too (see `aitw record --from`).
  replay->add_option("SOURCE", rp->source, ".aitwrec, image directory or video")->required();
  // Kept as given: the report names the server as the user wrote it.
  replay
      ->add_option("--server", rp->server,
                   "HOST:PORT of a running `aitw serve` (or of a balancer in front of several), or a list\n"
                   "HOST:PORT,HOST:PORT,...: each client starts on a random one and moves to the next on a\n"
                   "connect failure, disconnect or drain (backoff per endpoint); the report counts results\n"
                   "per endpoint (JSON `endpoints`)")
      ->check(kHostPortList);
  add_model_dir_flag(*replay, global);  // the in-process worker's: where it looks the name in Init up
  replay->add_option("--model", rp->model, "model reference sent in Init (name or path)")
      ->capture_default_str();
  replay->add_option("--fps", rp->fps, "offer rate; 0 = as fast as the worker answers")
      ->capture_default_str();
  replay->add_option("--duration", rp->duration, "seconds (0 = the source once)")->capture_default_str();
  replay->add_option("--conf", rp->conf, "confidence threshold sent in Init (0 = the worker's default)");
  replay->add_option("--json", rp->json_path, "write the report as JSON");
  replay->add_option("--detections", rp->detections_path, "write one JSON line per result (FILE.jsonl)");
  replay->add_option("--auth-token-file", rp->auth_token_file, "send the token in FILE in Init")
      ->check(CLI::ExistingFile);
  add_registry_flag(*replay, global, " (for the in-process worker)");
  add_precision_flag(
      *replay, rp->precision,
      "\n(the in-process worker's, as `aitw serve --precision`; a worker given by --server runs\n"
      "its own; the report's `providers` line and JSON say what ran)");
  replay
      ->add_option("--clients", rp->clients,
                   "concurrent clients, each with its own connection and Init, offering SOURCE at --fps,\n"
                   "started together. With N > 1 the top-level figures pool every client's frames\n"
                   "(fps_processed = total rate, p95_ms = p95 over all frames, drop_pct over all frames);\n"
                   "per-client figures go in a table and the JSON's `clients`, with fairness (min / max\n"
                   "client fps_processed), fps_processed_total/_min/_max, p50/p95/p99/max_ms_max (worst\n"
                   "client) and drop_pct_max, all gateable (with N = 1 they equal the top level)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  replay->add_option("--gate", rp->gate,
                     "conditions, e.g. \"p95_ms<150,fps_processed>=10,drop_pct<=5\" or, with --clients,\n"
                     "\"fairness>=0.8,p95_ms_max<2000,fps_processed_total>=8\"");
  return {replay, [rp] { return jobs::run_replay(*rp, std::cout); }};
}

}  // namespace aitw::tools
