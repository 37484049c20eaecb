#pragma once
// A real MongoDB-wire server for the history tests: CongoDB (npm @push.rocks/smartmongo, installed into the
// build tree by scripts/install-congodb.sh), run with node on a loopback port, in memory. stop() is SIGKILL
// (an outage mid-whatever); start() again listens on the same port, empty.
#include <sys/types.h>

#include <string>

namespace aitw::history::testing {

class CongoDb {
 public:
  CongoDb();  // picks a free port and starts it; throws std::runtime_error naming what is missing
  ~CongoDb();
  CongoDb(const CongoDb&) = delete;
  CongoDb& operator=(const CongoDb&) = delete;
  void start();
  void stop();
  // SIGSTOP / SIGCONT: a server that hangs (connections accepted by the kernel, never answered).
  void pause();
  void resume();
  int port() const { return port_; }
  // mongodb://127.0.0.1:PORT/DB
  std::string uri(const std::string& db) const;

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace aitw::history::testing
