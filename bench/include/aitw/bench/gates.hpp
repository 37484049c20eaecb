#pragma once
// Benchmark gates: "p95_ms<150,fps_processed>=10,drop_pct<=5" — comma-separated `NAME OP NUMBER` terms,
// OP one of < <= > >=.
// They live in bench/, not jobs/, with the report of bench/pipeline_bench.hpp: both are the benchmark's
// vocabulary (the figures of RESULTS.md), and `aitw replay` (jobs/) reuses them so that its report and gates
// read exactly like `aitw bench pipeline`'s. So jobs depends on bench and not the reverse: bench needs no
// network or registry, and the Google Benchmark binaries stay free of them.
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace aitw::bench {

struct GateTerm {
  std::string name, op;
  double value = 0;
};

// Throws std::invalid_argument naming the term that does not parse.
std::vector<GateTerm> parse_gates(const std::string& expr);
// The same, logging the parse error and returning false instead (for the commands' exit code 2).
bool parse_gates_or_log(const std::string& expr, std::vector<GateTerm>& out);

// Writes `report` (pretty-printed) to `path`; false, with a logged error, when it cannot.
bool write_json_report(const std::string& path, const nlohmann::json& report);

// Checks every term against `metrics`: a term applies to the metric of that exact name or, with
// `prefix_match`, to every metric whose name starts with it; a term that applies to none fails. Prints
// one "gate ok" / "GATE FAILED" line per check. Returns the number of failures.
int check_gates(const std::vector<GateTerm>& terms,
                const std::vector<std::pair<std::string, double>>& metrics, bool prefix_match,
                std::ostream& out);

}  // namespace aitw::bench
