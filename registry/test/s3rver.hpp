#pragma once
// A real S3-protocol server for the registry tests: s3rver (npm, installed into the build tree by
// scripts/install-s3rver.sh), run with node on a loopback port with bucket `aitw`, stopped and restarted
// on the same port and data directory to simulate an outage.
#include <filesystem>
#include <string>

#include "aitw/testing/node_server.hpp"

namespace aitw::registry::testing {

class S3rver {
 public:
  S3rver();  // starts it; throws std::runtime_error naming what is missing
  ~S3rver();
  void start() { server_.start(); }
  void stop() { server_.stop(); }  // SIGKILL: the store disappears mid-whatever
  int port() const { return server_.port(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // s3://aitw/<prefix>?endpoint=...&<extra>
  std::string uri(const std::string& prefix, const std::string& extra = "") const;
  static constexpr const char* kAccessKey = "S3RVER";  // s3rver's built-in account
  static constexpr const char* kSecretKey = "S3RVER";

 private:
  std::filesystem::path dir_;  // the objects; kept across stop()/start()
  aitw::testing::NodeServerProcess server_;
};

}  // namespace aitw::registry::testing
