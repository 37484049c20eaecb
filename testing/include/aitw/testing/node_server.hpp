#pragma once
// A server written for node (s3rver, CongoDB from npm, installed into the build tree by the
// scripts/install-*.sh scripts) run as a child process on a loopback port: start() waits until the port
// accepts, stop() is SIGKILL (an outage mid-whatever), pause()/resume() are SIGSTOP/SIGCONT (a server
// that hangs: connections accepted by the kernel, never answered). The child never outlives the test.
#include <sys/types.h>

#include <string>
#include <vector>

namespace aitw::testing {

class NodeServerProcess {
 public:
  // `name` is used in errors; `node_args` follow the node binary (options, the script, its arguments,
  // which must make it listen on 127.0.0.1:port); `cwd` is where node runs (empty: this process's).
  NodeServerProcess(std::string name, int port, std::vector<std::string> node_args, std::string cwd = "");
  ~NodeServerProcess();
  NodeServerProcess(const NodeServerProcess&) = delete;
  NodeServerProcess& operator=(const NodeServerProcess&) = delete;

  // The node found at configure time; throws std::runtime_error naming `install_script` when there was
  // none.
  static std::string node(const std::string& install_script);

  // Throws std::runtime_error when the child exits or does not accept within 15 s.
  void start();
  void stop();
  void pause();
  void resume();
  int port() const { return port_; }

 private:
  std::string name_;
  int port_;
  std::vector<std::string> node_args_;
  std::string cwd_;
  pid_t pid_ = -1;
};

}  // namespace aitw::testing
