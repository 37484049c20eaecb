#pragma once
// The two halves of `aitw replay` (private to jobs/): replay_job.cpp drives the clients and hands what each
// saw to replay_report.cpp, which pools it, prints the report, writes --json and checks --gate.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "aitw/bench/gates.hpp"
#include "aitw/jobs/replay.hpp"
#include "aitw/net/client.hpp"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::jobs {

// What one client of the run saw, measured at the client.
struct ClientTally {
  pipeline::PipelineStats s;  // processed, errors and latencies from its callbacks (offered and dropped are
                              // filled in by the report from the two counters below)
  std::uint64_t offered = 0;  // frames it submitted
  std::uint64_t server_dropped = 0;  // Errors kErrDropped from the worker (latest-wins on its side)
  net::ClientStats cs;               // the client library's counters at the end
  // The longest time without a Result while frames were offered (from the start to the first Result,
  // between Results, from the last Result to the end of the offering): what a failover costs a camera.
  double max_gap_ms = 0;
  std::uint64_t duplicate_results = 0;  // Results for a frame id already answered (must stay 0)
};

struct ReplayRun {
  double seconds = 0;                  // from the common start to the last client idle
  pipeline::InputSize input;           // the network input of InitOk
  std::string server;                  // "in-process 127.0.0.1:PORT" or --server
  std::vector<std::string> providers;  // InitOk's: what the worker runs (e.g. "aitw avx512 kernels, bf16")
};

// Per client: its own figures; the top level: every client's frames pooled (with one client, its own);
// across clients: fairness and the worst client, gateable. 0, 1 when a gate fails, 2 when --json cannot be
// written.
int report_replay(std::vector<ClientTally> clients, const ReplayRun& run, const ReplayOptions& o,
                  const std::vector<bench::GateTerm>& gates, std::ostream& out);

}  // namespace aitw::jobs
