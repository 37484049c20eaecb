#pragma once
// A real MongoDB-wire server for the history tests: CongoDB (npm @push.rocks/smartmongo, installed into the
// build tree by scripts/install-congodb.sh), run with node on a loopback port, in memory. stop() is SIGKILL
// (an outage mid-whatever); start() again listens on the same port, empty.
#include <string>

#include "aitw/testing/node_server.hpp"

namespace aitw::history::testing {

class CongoDb {
 public:
  CongoDb();  // picks a free port and starts it; throws std::runtime_error naming what is missing
  void start() { server_.start(); }
  void stop() { server_.stop(); }
  // SIGSTOP / SIGCONT: a server that hangs (connections accepted by the kernel, never answered).
  void pause() { server_.pause(); }
  void resume() { server_.resume(); }
  int port() const { return server_.port(); }
  // mongodb://127.0.0.1:PORT/DB
  std::string uri(const std::string& db) const;

 private:
  aitw::testing::NodeServerProcess server_;
};

}  // namespace aitw::history::testing
