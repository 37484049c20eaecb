#include "aitw/base/host_port.hpp"

#include <cctype>

namespace aitw {
namespace {

std::optional<HostPort> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

}  // namespace

std::string HostPort::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string* error) {
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail(error, "unclosed '[' (IPv6 is written [ADDR]:PORT)");
    hp.host = std::string(text.substr(1, close - 1));
    if (hp.host.empty()) return fail(error, "empty IPv6 address in brackets");
    for (const char c : hp.host)
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
        return fail(error, "'" + hp.host + "' is not an IPv6 address");
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail(error, "missing ':PORT' after ']'");
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail(error, "missing ':PORT' (expected HOST:PORT)");
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (hp.host.empty()) return fail(error, "missing host (expected HOST:PORT, e.g. 127.0.0.1:7070)");
    if (hp.host.find(':') != std::string::npos)
      return fail(error, "an IPv6 address needs brackets: [" + hp.host + "]:PORT");
    for (const char c : hp.host)
      if (!host_char(c)) return fail(error, "'" + hp.host + "' is not a host name or address");
  }
  if (port.empty()) return fail(error, "missing port after ':'");
  if (port.size() > 5) return fail(error, "port " + std::string(port) + " is out of range 1-65535");
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return fail(error, "port '" + std::string(port) + "' is not a number");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535)
    return fail(error, "port " + std::string(port) + " is out of range 1-65535");
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

}  // namespace aitw
