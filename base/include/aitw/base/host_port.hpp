#pragma once
// HOST:PORT as every flag and URI of aitw takes it: a host is required (a name, an IPv4 address, or an
// IPv6 address in brackets: [::1]:7070), the port is a decimal number from 1 to 65535, nothing else.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aitw {

struct HostPort {
  std::string host;  // without the brackets of an IPv6 address
  std::uint16_t port = 0;
  std::string str() const;  // back to HOST:PORT (brackets around IPv6)
};

// The parsed value, or nullopt with `error` saying what is wrong ("port 70000 is out of range 1-65535").
std::optional<HostPort> parse_host_port(std::string_view text, std::string* error = nullptr);

}  // namespace aitw
