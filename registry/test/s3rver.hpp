#pragma once
// A real S3-protocol server for the registry tests: s3rver (npm, installed into the build tree by
// scripts/install-s3rver.sh), run with node on a loopback port with bucket `aitw`, stopped and restarted
// on the same port and data directory to simulate an outage.
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace aitw::registry::testing {

class S3rver {
 public:
  S3rver();  // starts it; throws std::runtime_error naming what is missing
  ~S3rver();
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;
  void start();
  void stop();  // SIGKILL: the store disappears mid-whatever
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // s3://aitw/<prefix>?endpoint=...&<extra>
  std::string uri(const std::string& prefix, const std::string& extra = "") const;
  static constexpr const char* kAccessKey = "S3RVER";  // s3rver's built-in account
  static constexpr const char* kSecretKey = "S3RVER";

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace aitw::registry::testing
