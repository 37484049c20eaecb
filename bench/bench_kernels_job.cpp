#include <fstream>
#include <iomanip>
#include <ostream>

#include <nlohmann/json.hpp>

#include "aitw/base/log.hpp"
#include "aitw/bench/gates.hpp"
#include "aitw/bench/kernel_cases.hpp"

namespace aitw::bench {

int run_bench_kernels(const BenchKernelsOptions& options, std::ostream& out) {
  std::vector<GateTerm> gates;
  if (!parse_gates_or_log(options.gate, gates)) return 2;
  for (const auto& g : gates)
    if (g.op != ">=" && g.op != ">") {
      aitw::log_error("--gate: kernel gates are minimum speedups (NAME>=X), got '" + g.name + g.op + "'");
      return 2;
    }
  if (options.repetitions < 1) {
    aitw::log_error("--repetitions must be at least 1");
    return 2;
  }

  if (options.shared_dir.empty()) {
    aitw::log_error(
        "bench kernels: no data folder: pass --shared DIR (with models/ and datasets/) or set "
        "AITW_SHARED_DIR");
    return 2;
  }
  std::vector<KernelCase> cases;
  try {
    cases = make_kernel_cases(options.shared_dir);
  } catch (const std::exception& e) {
    aitw::log_error(std::string("bench kernels: ") + e.what());
    return 2;
  }
  out << std::left << std::setw(28) << "kernel" << std::right << std::setw(11) << "ours ms" << std::setw(13)
      << "baseline ms" << std::setw(10) << "speedup"
      << "   (median of " << options.repetitions << ")\n";
  const auto results = run_kernel_cases(cases, options.repetitions, 50, [&](const KernelResult& r) {
    out << std::left << std::setw(28) << r.name << std::right << std::fixed << std::setprecision(3)
        << std::setw(11) << r.ours_ms << std::setw(13) << r.baseline_ms << std::setprecision(1)
        << std::setw(9) << r.speedup << "x   " << r.baseline << "\n"
        << std::flush;
  });

  nlohmann::json j = {{"repetitions", options.repetitions}, {"kernels", nlohmann::json::array()}};
  for (const auto& r : results)
    j["kernels"].push_back(
        {{"name", r.name}, {"ours_ms", r.ours_ms}, {"baseline_ms", r.baseline_ms}, {"speedup", r.speedup}});
  if (!options.json_path.empty() && !write_json_report(options.json_path, j)) return 2;

  std::vector<std::pair<std::string, double>> speedups;
  for (const auto& r : results) speedups.emplace_back(r.name, r.speedup);
  const int failed = check_gates(gates, speedups, /*prefix_match=*/true, out);
  return failed ? 1 : 0;
}

}  // namespace aitw::bench
