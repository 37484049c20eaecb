#include <fstream>
#include <iomanip>
#include <ostream>
#include <regex>

#include <nlohmann/json.hpp>

#include "aitw/bench/kernel_cases.hpp"
#include "aitw/pipeline/log.hpp"

namespace aitw::bench {

int run_bench_kernels(const BenchKernelsOptions& options, std::ostream& out) {
  struct Gate {
    std::string prefix;
    double min_speedup;
    bool matched = false;
  };
  std::vector<Gate> gates;
  const std::regex term(R"(\s*([A-Za-z0-9_]+)\s*>=\s*([0-9.]+)\s*)");
  std::size_t start = 0;
  while (!options.gate.empty() && start <= options.gate.size()) {
    const std::size_t comma = std::min(options.gate.find(',', start), options.gate.size());
    const std::string t = options.gate.substr(start, comma - start);
    std::smatch m;
    if (!std::regex_match(t, m, term)) {
      pipeline::log_error("--gate: cannot parse '" + t + "' (expected NAME_PREFIX>=SPEEDUP)");
      return 2;
    }
    gates.push_back({m[1], std::stod(m[2])});
    start = comma + 1;
  }
  if (options.repetitions < 1) {
    pipeline::log_error("--repetitions must be at least 1");
    return 2;
  }

  std::vector<KernelCase> cases;
  try {
    cases = make_kernel_cases(options.shared_dir);
  } catch (const std::exception& e) {
    pipeline::log_error(std::string("bench kernels: ") + e.what());
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
  if (!options.json_path.empty()) {
    std::ofstream f(options.json_path);
    f << j.dump(2) << "\n";
    if (!f) {
      pipeline::log_error("--json: cannot write " + options.json_path);
      return 2;
    }
  }

  int failed = 0;
  for (auto& g : gates) {
    for (const auto& r : results) {
      if (r.name.rfind(g.prefix, 0) != 0) continue;
      g.matched = true;
      if (r.speedup < g.min_speedup) {
        ++failed;
        out << "GATE FAILED: " << r.name << " speedup " << std::setprecision(2) << r.speedup << "x < "
            << g.min_speedup << "x\n";
      } else {
        out << "gate ok: " << r.name << " speedup " << std::setprecision(2) << r.speedup
            << "x >= " << g.min_speedup << "x\n";
      }
    }
    if (!g.matched) {
      out << "GATE FAILED: no kernel named '" << g.prefix << "*'\n";
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace aitw::bench
