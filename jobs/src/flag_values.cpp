#include "aitw/jobs/flag_values.hpp"

#include <charconv>
#include <cstdlib>
#include <regex>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"

namespace aitw::jobs {
namespace {

bool fail(std::string* error, const std::string& what) {
  if (error) *error = what;
  return false;
}

// A whole decimal number that fits an int (from_chars: an out-of-range number is an error, not an
// exception or a wrapped value).
std::optional<int> whole_int(const std::string& t) {
  int v = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
  return v;
}

}  // namespace

bool apply_imgsz(const std::string& s, pipeline::DetectorConfig& cfg, std::string* error) {
  const std::string range = "sizes must be multiples of 32 up to 8192, got '" + s + "'";
  auto number = [&](const std::string& t) -> std::optional<int> {
    const auto v = whole_int(t);
    if (!v || *v > 8192) return std::nullopt;
    return v;
  };
  auto multiple_of_32 = [](int v) { return v > 0 && v % 32 == 0; };
  const std::string positive = "sizes must be positive multiples of 32, got '" + s + "'";
  std::smatch m;
  if (std::regex_match(s, m, std::regex(R"((\d+)\s*[xX,]\s*(\d+))"))) {
    const auto h = number(m[1]), w = number(m[2]);
    if (!h || !w) return fail(error, range);
    if (!multiple_of_32(*h) || !multiple_of_32(*w)) return fail(error, positive);
    cfg.fixed_input = pipeline::InputSize{*h, *w};
    return true;
  }
  if (std::regex_match(s, std::regex(R"(\d+)"))) {
    const auto n = number(s);
    if (!n) return fail(error, range);
    if (!multiple_of_32(*n)) return fail(error, positive);
    cfg.imgsz = *n;
    cfg.fixed_input.reset();
    return true;
  }
  return fail(error, "expected N or HxW, got '" + s + "'");
}

std::optional<std::pair<int, int>> parse_dimensions(const std::string& spec, const std::string& spelling,
                                                    std::string* error) {
  const auto x = spec.find('x');
  if (x != std::string::npos) {
    const auto a = whole_int(spec.substr(0, x)), b = whole_int(spec.substr(x + 1));
    if (a && b && *a > 0 && *b > 0) return std::pair{*a, *b};
  }
  fail(error, "expected " + spelling + " (two positive sizes), got '" + spec + "'");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& spec, std::string* error) {
  char* end = nullptr;
  const double x = std::strtod(spec.c_str(), &end);
  const std::string unit = end ? end : "";
  const double ms = unit == "ms"                    ? x
                    : unit == "m"                   ? x * 60000
                    : unit == "h"                   ? x * 3600000
                    : unit == "d"                   ? x * 86400000
                    : (unit.empty() || unit == "s") ? x * 1000
                                                    : -1;
  if (!(ms > 0) || ms > 1e10) {
    fail(error, "expected e.g. 60s, 500ms, 2m, 1h or 30d, got '" + spec + "'");
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::optional<std::pair<std::string, std::string>> parse_label(const std::string& spec, std::string* error) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    fail(error, "expected k=v, got '" + spec + "'");
    return std::nullopt;
  }
  return std::pair{spec.substr(0, eq), spec.substr(eq + 1)};
}

std::optional<kernel::ConvPrecision> parse_precision(const std::string& spec, std::string* error) {
  if (spec == "fp32") return kernel::ConvPrecision::Fp32;
  if (spec == "bf16") return kernel::ConvPrecision::Bf16;
  if (spec == "auto")
    return kernel::conv_bf16_supported() && kernel::aitw_convolution_active() ? kernel::ConvPrecision::Bf16
                                                                              : kernel::ConvPrecision::Fp32;
  if (error) *error = "'" + spec + "' is not fp32, bf16 or auto";
  return std::nullopt;
}

}  // namespace aitw::jobs
