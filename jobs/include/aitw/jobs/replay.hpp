#pragma once
// `aitw replay`: offers a recording (or an image directory / video, recorded on the fly) at a fixed rate
// to a worker through the client library, and reports what `aitw bench pipeline` reports, measured at the
// client, plus reconnects and errors. Without --server it runs a worker in-process on loopback. With
// --clients N, N clients do so at once (a load test of one worker): per-client figures and fairness.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "aitw/base/host_port.hpp"

#include "aitw/base/defaults.hpp"
#include "aitw/kernel/conv.hpp"

namespace aitw::jobs {

struct ReplayOptions {
  std::string source;  // .aitwrec, image directory, or video
  // HOST:PORT[,HOST:PORT...]; empty = an in-process server on 127.0.0.1. With several, each client starts
  // on a random one and moves on to the next on failure or drain (see aitw/net/client.hpp); the report
  // counts Results per endpoint (`endpoints`).
  std::string server;
  std::string model{kDefaultModel};  // registry name[@version] or path, sent in Init
  double fps = 12;                   // 0 = as fast as the worker answers
  double duration = 0;               // seconds; 0 = the source once
  float conf = 0;                    // 0 = the worker's default
  // Concurrent clients, each with its own connection and Init, offering the same source at `fps`, started
  // together. With more than one, the report's top-level figures pool every client's frames and the JSON
  // adds `clients` (per client) and fairness, fps_processed_total/min/max, p95_ms_max, ... (all gateable).
  int clients = 1;
  std::string json_path, detections_path, gate;
  // The token sent in Init is this file's first line (see `aitw serve --auth-token-file`); empty = none.
  std::string auth_token_file;
  // The in-process worker's convolutions (net::ServerConfig's default here; the CLI's --precision defaults
  // to auto, as `aitw serve`'s); a remote worker (--server) runs its own. The report's `providers` (InitOk's)
  // say what ran.
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;
};

// HOST:PORT[,HOST:PORT...] as --server takes it; nullopt with `error` naming the bad entry.
std::optional<std::vector<HostPort>> parse_endpoints(const std::string& list, std::string* error = nullptr);

// 0, 1 when a gate fails, 2 on a setup error (unreadable source or token file, unreachable server, model
// error).
int run_replay(const ReplayOptions& options, std::ostream& out);

}  // namespace aitw::jobs
