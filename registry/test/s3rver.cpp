#include "s3rver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace aitw::registry::testing {
namespace fs = std::filesystem;

namespace {

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(s);
    throw std::runtime_error("no free loopback port");
  }
  close(s);
  return ntohs(a.sin_port);
}

bool accepts(int port) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

const std::string kScript = std::string(AITW_S3RVER_DIR) + "/node_modules/s3rver/bin/s3rver.js";

}  // namespace

S3rver::S3rver() {
  if (std::string(AITW_NODE).empty() || std::string(AITW_NODE).ends_with("NOTFOUND"))
    throw std::runtime_error(
        "node not found at configure time: run `bash scripts/install-s3rver.sh` and "
        "reconfigure");
  if (!fs::exists(kScript))
    throw std::runtime_error("s3rver is not installed at " + kScript +
                             ": run `bash scripts/install-s3rver.sh`");
  dir_ = fs::temp_directory_path() / ("aitw_s3rver_" + std::to_string(getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  port_ = free_port();
  start();
}

S3rver::~S3rver() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void S3rver::start() {
  if (pid_ > 0) return;
  const std::string port = std::to_string(port_), dir = dir_.string();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node >= 17 (OpenSSL 3) only
    // offers through the legacy provider; without it every truncated listing is a 500.
    execl(AITW_NODE, AITW_NODE, "--openssl-legacy-provider", kScript.c_str(), "-d", dir.c_str(), "-a",
          "127.0.0.1", "-p", port.c_str(), "--silent", "--configure-bucket", "aitw",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {  // up to 15 s for node to start
    if (accepts(port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("s3rver exited at start (status " + std::to_string(status) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("s3rver did not listen on 127.0.0.1:" + port + " within 15 s");
}

void S3rver::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string S3rver::uri(const std::string& prefix, const std::string& extra) const {
  return "s3://aitw/" + prefix + "?endpoint=" + endpoint() + (extra.empty() ? "" : "&" + extra);
}

}  // namespace aitw::registry::testing
