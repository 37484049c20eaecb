#include "aitw/bench/gates.hpp"

#include "aitw/base/log.hpp"

#include <fstream>
#include <iomanip>
#include <ostream>
#include <regex>

namespace aitw::bench {

std::vector<GateTerm> parse_gates(const std::string& expr) {
  static const std::regex term(R"(\s*([A-Za-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*)");
  std::vector<GateTerm> out;
  std::size_t start = 0;
  while (!expr.empty() && start <= expr.size()) {
    const std::size_t comma = std::min(expr.find(',', start), expr.size());
    const std::string t = expr.substr(start, comma - start);
    std::smatch m;
    if (!std::regex_match(t, m, term))
      throw std::invalid_argument("--gate: cannot parse '" + t + "' (expected NAME<VALUE, <=, > or >=)");
    out.push_back({m[1], m[2], std::stod(m[3])});
    start = comma + 1;
  }
  return out;
}

bool parse_gates_or_log(const std::string& expr, std::vector<GateTerm>& out) {
  try {
    out = parse_gates(expr);
    return true;
  } catch (const std::invalid_argument& e) {
    aitw::log_error(e.what());
    return false;
  }
}

bool write_json_report(const std::string& path, const nlohmann::json& report) {
  std::ofstream f(path);
  f << report.dump(2) << "\n";
  f.flush();
  if (f) return true;
  aitw::log_error("--json: cannot write " + path);
  return false;
}

int check_gates(const std::vector<GateTerm>& terms,
                const std::vector<std::pair<std::string, double>>& metrics, bool prefix_match,
                std::ostream& out) {
  int failed = 0;
  for (const auto& t : terms) {
    bool matched = false;
    for (const auto& [name, v] : metrics) {
      if (prefix_match ? name.rfind(t.name, 0) != 0 : name != t.name) continue;
      matched = true;
      const bool ok = t.op == "<"    ? v < t.value
                      : t.op == "<=" ? v <= t.value
                      : t.op == ">"  ? v > t.value
                                     : v >= t.value;
      if (!ok) ++failed;
      out << (ok ? "gate ok: " : "GATE FAILED: ") << name << " = " << std::setprecision(4) << v
          << (ok ? " meets " : " misses ") << t.name << t.op << t.value << "\n";
    }
    if (!matched) {
      ++failed;
      out << "GATE FAILED: no metric named '" << t.name << (prefix_match ? "*" : "") << "'\n";
    }
  }
  return failed;
}

}  // namespace aitw::bench
