#include "s3rver.hpp"

#include <unistd.h>

#include <stdexcept>

#include "aitw/testing/ports.hpp"

namespace aitw::registry::testing {
namespace fs = std::filesystem;

namespace {

const std::string kScript = std::string(AITW_S3RVER_DIR) + "/node_modules/s3rver/bin/s3rver.js";
const std::string kInstall = "scripts/install-s3rver.sh";

aitw::testing::NodeServerProcess s3rver_process(const fs::path& dir) {
  const int port = aitw::testing::free_port();
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node >= 17 (OpenSSL 3) only
  // offers through the legacy provider; without it every truncated listing is a 500.
  return {"s3rver",
          port,
          {"--openssl-legacy-provider", kScript, "-d", dir.string(), "-a", "127.0.0.1", "-p",
           std::to_string(port), "--silent", "--configure-bucket", "aitw"}};
}

}  // namespace

S3rver::S3rver()
    : dir_(fs::temp_directory_path() / ("aitw_s3rver_" + std::to_string(getpid()))),
      server_(s3rver_process(dir_)) {
  aitw::testing::NodeServerProcess::node(kInstall);
  if (!fs::exists(kScript))
    throw std::runtime_error("s3rver is not installed at " + kScript + ": run `bash " + kInstall + "`");
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  start();
}

S3rver::~S3rver() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string S3rver::uri(const std::string& prefix, const std::string& extra) const {
  return "s3://aitw/" + prefix + "?endpoint=" + endpoint() + (extra.empty() ? "" : "&" + extra);
}

}  // namespace aitw::registry::testing
