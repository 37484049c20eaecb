#include "aitw/testing/node_server.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>

#include "aitw/testing/ports.hpp"

namespace aitw::testing {

NodeServerProcess::NodeServerProcess(std::string name, int port, std::vector<std::string> node_args,
                                     std::string cwd)
    : name_(std::move(name)), port_(port), node_args_(std::move(node_args)), cwd_(std::move(cwd)) {}

NodeServerProcess::~NodeServerProcess() {
  stop();
}

std::string NodeServerProcess::node(const std::string& install_script) {
  const std::string node = AITW_NODE;
  if (node.empty() || node.ends_with("NOTFOUND"))
    throw std::runtime_error("node not found at configure time: run `bash " + install_script +
                             "` and reconfigure");
  return node;
}

void NodeServerProcess::start() {
  if (pid_ > 0) return;
  // argv is built before fork: the child only execs.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(AITW_NODE));
  for (auto& a : node_args_) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
    if (!cwd_.empty() && chdir(cwd_.c_str()) != 0) _exit(127);
    execv(AITW_NODE, argv.data());
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {  // up to 15 s for node to start
    if (accepts(port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error(name_ + " exited at start (status " + std::to_string(status) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error(name_ + " did not listen on 127.0.0.1:" + std::to_string(port_) + " within 15 s");
}

void NodeServerProcess::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void NodeServerProcess::pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void NodeServerProcess::resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

}  // namespace aitw::testing
