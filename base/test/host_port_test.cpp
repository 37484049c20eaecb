#include "aitw/base/host_port.hpp"

#include <gtest/gtest.h>

namespace aitw {
namespace {

std::string error_of(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_host_port(text, &error).has_value()) << text;
  return error;
}

TEST(HostPort, ParsesNamesIpv4AndBracketedIpv6) {
  auto a = parse_host_port("127.0.0.1:7070");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7070);
  auto b = parse_host_port("edge-box.local:1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "edge-box.local");
  EXPECT_EQ(b->port, 1);
  auto c = parse_host_port("[::1]:65535");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 65535);
  EXPECT_EQ(c->str(), "[::1]:65535");
  EXPECT_EQ(a->str(), "127.0.0.1:7070");
}

TEST(HostPort, RefusesWhatAtoiAccepted) {
  // std::atoi read these as port 0 (a random port) and 70000 mod 65536 = 4464.
  EXPECT_NE(error_of("127.0.0.1:abc").find("'abc' is not a number"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:70000").find("out of range 1-65535"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:0").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:99999999999").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:80x").find("not a number"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1:-1").find("not a number"), std::string::npos);
  EXPECT_NE(error_of("127.0.0.1: 80").find("not a number"), std::string::npos);
}

TEST(HostPort, RequiresHostAndPort) {
  EXPECT_NE(error_of(":7070").find("missing host"), std::string::npos);
  EXPECT_NE(error_of("7070").find("missing ':PORT'"), std::string::npos);
  EXPECT_NE(error_of("host:").find("missing port"), std::string::npos);
  EXPECT_NE(error_of("").find("missing ':PORT'"), std::string::npos);
  EXPECT_NE(error_of("::1:7070").find("needs brackets"), std::string::npos);
  EXPECT_NE(error_of("[::1]7070").find("missing ':PORT'"), std::string::npos);
  EXPECT_NE(error_of("[::1:7070").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("[]:7070").find("empty IPv6"), std::string::npos);
  EXPECT_NE(error_of("[zz]:7070").find("not an IPv6"), std::string::npos);
  EXPECT_NE(error_of("a b:7070").find("not a host"), std::string::npos);
  EXPECT_NE(error_of("user@host:7070").find("not a host"), std::string::npos);
}

}  // namespace
}  // namespace aitw
