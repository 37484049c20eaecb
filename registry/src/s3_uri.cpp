#include "s3_uri.hpp"

#include <algorithm>
#include <cctype>
#include <exception>

#include "aitw/base/host_port.hpp"
#include "aitw/registry/registry.hpp"

namespace aitw::registry::s3 {

using Kind = RegistryError::Kind;

namespace {

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Config parse_uri(const std::string& uri) {
  if (uri.rfind("s3://", 0) != 0) throw RegistryError("registry '" + uri + "': expected s3://bucket/prefix");
  Config c;
  std::string rest = uri.substr(5);
  std::string query;
  if (const auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  c.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) c.prefix = percent_decode(rest.substr(slash + 1));
  static const auto bucket_ok = [](const std::string& b) {
    if (b.size() < 3 || b.size() > 63) return false;
    return std::all_of(b.begin(), b.end(), [](char ch) {
      return std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
             ch == '-' || ch == '.';
    });
  };
  if (!bucket_ok(c.bucket))
    throw RegistryError(
        "registry '" + uri + "': bad bucket name '" + c.bucket + "' (3-63 characters: a-z 0-9 . -)",
        Kind::Invalid);
  while (!c.prefix.empty() && c.prefix.back() == '/') c.prefix.pop_back();
  // "." / ".." / empty segments would be normalised by the HTTP stack after signing (and mean nothing here).
  for (std::size_t start = 0; !c.prefix.empty() && start <= c.prefix.size();) {
    const auto end = std::min(c.prefix.find('/', start), c.prefix.size());
    const std::string seg = c.prefix.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..")
      throw RegistryError("registry '" + uri + "': bad prefix (empty, '.' or '..' segment)", Kind::Invalid);
    start = end + 1;
  }
  if (!c.prefix.empty()) c.prefix += '/';

  auto number = [&](const std::string& k, const std::string& v, long long lo, long long hi) {
    try {
      std::size_t used = 0;
      const long long n = std::stoll(v, &used);
      if (used == v.size() && n >= lo && n <= hi) return n;
    } catch (const std::exception&) {
    }
    throw RegistryError("registry '" + uri + "': " + k + "=" + v + " is not a number in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "]",
                        Kind::Invalid);
  };
  bool have_endpoint = false;
  for (std::size_t start = 0; start < query.size();) {
    const auto amp = std::min(query.find('&', start), query.size());
    const std::string kv = query.substr(start, amp - start);
    start = amp + 1;
    if (kv.empty()) continue;
    const auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1));
    using ms = std::chrono::milliseconds;
    if (k == "endpoint") {
      if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
        throw RegistryError("registry '" + uri + "': endpoint must start with http:// or https://",
                            Kind::Invalid);
      c.endpoint = v;
      while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
      // scheme://host[:port] only: a path would be signed as part of Host, user:password would end up in
      // every message.
      const std::string authority = c.endpoint.substr(c.endpoint.find("://") + 3);
      if (authority.empty() || authority.find_first_of("/?#@") != std::string::npos)
        throw RegistryError("registry s3://" + c.bucket + "/" + c.prefix +
                                ": endpoint must be scheme://host[:port] (no path, query or user)",
                            Kind::Invalid);
      // The host and port as every HOST:PORT of aitw is checked (a port of 1-65535, brackets for IPv6);
      // without a port, the scheme's.
      const auto bracket = authority.rfind(']');
      const bool has_port =
          authority.find(':', bracket == std::string::npos ? 0 : bracket) != std::string::npos;
      std::string error;
      if (!parse_host_port(has_port ? authority : authority + ":1", &error))
        throw RegistryError(
            "registry s3://" + c.bucket + "/" + c.prefix + ": endpoint '" + c.endpoint + "': " + error,
            Kind::Invalid);
      have_endpoint = true;
    } else if (k == "region") {
      if (v.empty()) throw RegistryError("registry '" + uri + "': empty region", Kind::Invalid);
      c.region = v;
    } else if (k == "path_style") {
      c.path_style = v != "0" && v != "false";
    } else if (k == "connect_timeout_ms") {
      c.connect_timeout = ms(number(k, v, 1, 600000));
    } else if (k == "timeout_ms") {
      c.timeout = ms(number(k, v, 1, 3600000));
    } else if (k == "retries") {
      c.retries = static_cast<int>(number(k, v, 0, 10));
    } else if (k == "backoff_ms") {
      c.backoff = ms(number(k, v, 0, 60000));
    } else if (k == "breaker_failures") {
      c.breaker_failures = static_cast<int>(number(k, v, 1, 1000));
    } else if (k == "breaker_open_ms") {
      c.breaker_open = ms(number(k, v, 1, 3600000));
    } else if (k == "max_keys") {
      c.max_keys = static_cast<int>(number(k, v, 1, 1000));
    } else {
      throw RegistryError("registry '" + uri + "': unknown parameter '" + k +
                              "' (endpoint, region, path_style, connect_timeout_ms, timeout_ms, retries, "
                              "backoff_ms, breaker_failures, breaker_open_ms, max_keys)",
                          Kind::Invalid);
    }
  }
  if (!have_endpoint) {
    c.endpoint = "https://s3." + c.region + ".amazonaws.com";
    c.path_style = false;
  }
  return c;
}

}  // namespace aitw::registry::s3
