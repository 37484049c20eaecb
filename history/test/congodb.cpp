#include "congodb.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace aitw::history::testing {
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

const std::string kDir = AITW_CONGODB_DIR;
const std::string kScript = kDir + "/congodb.mjs";

}  // namespace

CongoDb::CongoDb() {
  if (std::string(AITW_NODE).empty() || std::string(AITW_NODE).ends_with("NOTFOUND"))
    throw std::runtime_error(
        "node not found at configure time: run `bash scripts/install-congodb.sh` and reconfigure");
  if (!std::filesystem::exists(kDir + "/node_modules/@push.rocks/smartmongo/dist_ts/congodb/index.js"))
    throw std::runtime_error("CongoDB is not installed in " + kDir +
                             ": run `bash scripts/install-congodb.sh`");
  port_ = free_port();
  start();
}

CongoDb::~CongoDb() {
  stop();
}

void CongoDb::start() {
  if (pid_ > 0) return;
  const std::string port = std::to_string(port_);
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
    if (chdir(kDir.c_str()) != 0) _exit(127);
    execl(AITW_NODE, AITW_NODE, kScript.c_str(), port.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {  // up to 15 s for node to start
    if (accepts(port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("CongoDB exited at start (status " + std::to_string(status) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("CongoDB did not listen on 127.0.0.1:" + port + " within 15 s");
}

void CongoDb::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void CongoDb::pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void CongoDb::resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

std::string CongoDb::uri(const std::string& db) const {
  return "mongodb://127.0.0.1:" + std::to_string(port_) + "/" + db;
}

}  // namespace aitw::history::testing
