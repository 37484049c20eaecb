#include "congodb.hpp"

#include <filesystem>
#include <stdexcept>

#include "aitw/testing/ports.hpp"

namespace aitw::history::testing {
namespace {

const std::string kDir = AITW_CONGODB_DIR;
const std::string kInstall = "scripts/install-congodb.sh";

aitw::testing::NodeServerProcess congodb_process() {
  const int port = aitw::testing::free_port();
  return {"CongoDB", port, {kDir + "/congodb.mjs", std::to_string(port)}, kDir};
}

}  // namespace

CongoDb::CongoDb() : server_(congodb_process()) {
  aitw::testing::NodeServerProcess::node(kInstall);
  if (!std::filesystem::exists(kDir + "/node_modules/@push.rocks/smartmongo/dist_ts/congodb/index.js"))
    throw std::runtime_error("CongoDB is not installed in " + kDir + ": run `bash " + kInstall + "`");
  start();
}

std::string CongoDb::uri(const std::string& db) const {
  return "mongodb://127.0.0.1:" + std::to_string(port()) + "/" + db;
}

}  // namespace aitw::history::testing
