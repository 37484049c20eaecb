// `aitw serve` run as a service (issue 16): flags from the environment (AITW_*, and the seed container's
// BIND_HOST/BIND_PORT), `aitw health` against a worker that is up and one that is gone, and the drain on
// SIGTERM ending with exit 0. Real processes; the worker is the binary's own child so its exit status is
// seen.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "aitw/testing/command.hpp"
#include "aitw/testing/ports.hpp"

namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kAitw = AITW_BINARY;

using namespace aitw::testing;  // free_port, run_command, slurp
using Run = aitw::testing::CommandResult;

fs::path scratch() {
  const fs::path dir = fs::temp_directory_path() / ("aitw_serve_ops_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

Run run(const std::string& args, const std::string& env = "") {
  return aitw::testing::run_command(env + " " + kAitw + " " + args);
}

// `env aitw serve ...` as a child of this process (exec'd by the shell: the pid is aitw's), output to `log`.
pid_t spawn_serve(const std::string& env, const std::string& args, const fs::path& log) {
  const std::string cmd = "exec env AITW_MODEL_DIR=" + kShared + "/models " + env + " " + kAitw + " serve " +
                          args + " > " + log.string() + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// `aitw health` until it succeeds (the worker is starting): the last attempt.
Run health_until_up(const std::string& server) {
  Run r;
  for (int i = 0; i < 300; ++i) {
    r = run("health --server " + server + " --timeout 2s");
    if (r.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return r;
}

int terminate_and_wait(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// AITW_LISTEN alone places the worker (no --listen): `aitw health` finds it there; SIGTERM drains, logs
// it and exits 0; then `aitw health` says the connection is refused and exits 1.
TEST(CliServeEnv, ListenFromAitwListenHealthUpThenDown) {
  const std::string at = "127.0.0.1:" + std::to_string(free_port());
  const fs::path log = scratch() / "serve_env.log";
  const pid_t pid = spawn_serve("AITW_LISTEN=" + at + " AITW_DRAIN_TIMEOUT=3s", "", log);
  ASSERT_GT(pid, 0);
  const auto up = health_until_up(at);
  EXPECT_EQ(up.exit_code, 0) << up.err << slurp(log);
  EXPECT_NE(up.out.find(at + ": ok"), std::string::npos) << up.out;
  EXPECT_EQ(terminate_and_wait(pid), 0) << slurp(log);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("serving on " + at), std::string::npos) << text;
  EXPECT_NE(text.find("draining (at most 3000 ms)"), std::string::npos) << text;  // AITW_DRAIN_TIMEOUT
  EXPECT_NE(text.find("drained 0 session(s)"), std::string::npos) << text;
  const auto down = run("health --server " + at + " --timeout 2s");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("connection refused"), std::string::npos) << down.err;
}

// The seed container's BIND_HOST/BIND_PORT; a flag wins over the environment.
TEST(CliServeEnv, SeedBindVariablesAndFlagPrecedence) {
  const int port = free_port();
  const std::string at = "127.0.0.1:" + std::to_string(port);
  const fs::path log = scratch() / "serve_bind.log";
  const pid_t pid = spawn_serve("BIND_HOST=127.0.0.1 BIND_PORT=" + std::to_string(port), "", log);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(health_until_up(at).exit_code, 0) << slurp(log);
  EXPECT_EQ(terminate_and_wait(pid), 0);

  const std::string flag_at = "127.0.0.1:" + std::to_string(free_port());
  const pid_t pid2 = spawn_serve("AITW_LISTEN=127.0.0.1:1", "--listen " + flag_at, log);
  EXPECT_EQ(health_until_up(flag_at).exit_code, 0) << slurp(log);
  EXPECT_EQ(terminate_and_wait(pid2), 0);
}

// A bad value from the environment is a usage error naming it, as a flag's would be.
TEST(CliServeEnv, BadEnvironmentValuesExitTwoNamingThem) {
  const auto idle = run("serve", "AITW_IDLE_TIMEOUT=5x");
  EXPECT_EQ(idle.exit_code, 2);
  EXPECT_NE(idle.err.find("idle-timeout"), std::string::npos) << idle.err;
  const auto port = run("serve", "BIND_PORT=99999");
  EXPECT_EQ(port.exit_code, 2);
  EXPECT_NE(port.err.find("BIND_HOST/BIND_PORT"), std::string::npos) << port.err;
  const auto help = run("serve --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* name : {"AITW_LISTEN", "AITW_METRICS", "AITW_IDLE_TIMEOUT", "AITW_HEARTBEAT_TIMEOUT",
                           "AITW_MAX_SESSIONS", "AITW_MAX_FRAME_BYTES", "AITW_NETS", "AITW_THREADS",
                           "AITW_DRAIN_TIMEOUT", "AITW_AUTH_TOKEN_FILE", "--drain-timeout"})
    EXPECT_NE(help.out.find(name), std::string::npos) << name << "\n" << help.out;
}

// Usage and bad replies: a malformed --server is a usage error; a port that answers HTTP, not the protocol,
// is a bad reply or a timeout, exit 1 either way.
TEST(CliHealth, UsageErrorsAndAPortThatIsNotAWorker) {
  EXPECT_EQ(run("health --server nocolon").exit_code, 2);
  EXPECT_EQ(run("health --timeout 5x").exit_code, 2);
  const std::string at = "127.0.0.1:" + std::to_string(free_port());
  const std::string metrics = "127.0.0.1:" + std::to_string(free_port());
  const fs::path log = scratch() / "serve_metrics.log";
  const pid_t pid = spawn_serve("", "--listen " + at + " --metrics " + metrics, log);
  EXPECT_EQ(health_until_up(at).exit_code, 0) << slurp(log);
  const auto http = run("health --server " + metrics + " --timeout 500ms");
  EXPECT_EQ(http.exit_code, 1);
  EXPECT_NE(http.err.find("timeout after 500 ms waiting for the Heartbeat echo"), std::string::npos)
      << http.err;
  EXPECT_EQ(terminate_and_wait(pid), 0);
  fs::remove_all(scratch());
}
