// The installed C++ client, used from outside the tree (tests/consumer/run.cmake builds and runs it):
//   aitw_consumer AITW_BINARY MODEL_DIR IMAGE.jpg
// 1. a client pointed at a port nobody listens on reports that it never got an InitOk;
// 2. the installed `aitw serve` is started on a free port, the client Inits, sends the JPEG and prints the
//    detections of its Result. Exit 0 only if both behave.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "aitw/net/client.hpp"

extern char** environ;

namespace {

std::uint16_t free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(s);
  return ntohs(a.sin_port);
}

aitw::net::ClientConfig config(std::uint16_t port) {
  aitw::net::ClientConfig cfg;
  cfg.port = port;
  cfg.init.set_model("yolo11n");
  cfg.init.set_format(aitw::v1::JPEG);
  cfg.init.mutable_thresholds()->set_conf(0.25f);
  cfg.backoff_initial = std::chrono::milliseconds(50);
  cfg.backoff_max = std::chrono::milliseconds(200);
  return cfg;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s AITW_BINARY MODEL_DIR IMAGE.jpg\n", argv[0]);
    return 2;
  }
  {
    const auto port = free_port();  // closed again: nothing listens there
    aitw::net::Client nobody(config(port), [](const aitw::v1::Result&, double) {});
    nobody.start();
    if (nobody.wait_initialized(std::chrono::milliseconds(300))) {
      std::fprintf(stderr, "FAIL: an InitOk from port %u, where nothing listens\n", port);
      return 1;
    }
    std::printf("no worker at 127.0.0.1:%u: not initialized (as expected)\n", port);
  }

  std::ifstream f(argv[3], std::ios::binary);
  const std::string jpeg{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  if (jpeg.empty()) {
    std::fprintf(stderr, "FAIL: cannot read %s\n", argv[3]);
    return 1;
  }
  const auto port = free_port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  const std::string model_dir = argv[2];
  char* args[] = {argv[1],
                  const_cast<char*>("serve"),
                  const_cast<char*>("--listen"),
                  const_cast<char*>(listen.c_str()),
                  const_cast<char*>("--model-dir"),
                  const_cast<char*>(model_dir.c_str()),
                  nullptr};
  pid_t server = 0;
  if (posix_spawn(&server, argv[1], nullptr, nullptr, args, environ) != 0) {
    std::fprintf(stderr, "FAIL: cannot start %s\n", argv[1]);
    return 1;
  }
  int detections = -1;
  {
    aitw::net::Client client(config(port), [&](const aitw::v1::Result& r, double latency_ms) {
      detections = r.detections_size();
      std::printf("result of frame %llu: %d detections in %.1f ms\n",
                  static_cast<unsigned long long>(r.frame_id()), r.detections_size(), latency_ms);
      for (const auto& d : r.detections())
        std::printf("  class %u score %.2f box %.0f,%.0f-%.0f,%.0f\n", d.class_id(), d.score(), d.x1(),
                    d.y1(), d.x2(), d.y2());
    });
    client.start();  // retries with backoff until `aitw serve` listens
    if (!client.wait_initialized(std::chrono::seconds(60))) {
      std::fprintf(stderr, "FAIL: no InitOk from %s\n", listen.c_str());
    } else {
      aitw::v1::Frame frame;
      frame.set_format(aitw::v1::JPEG);
      frame.set_pixels(jpeg);
      client.submit(frame);
      client.wait_idle(std::chrono::seconds(60));
      std::printf("model %s, ai_init_ok_total %llu\n", client.init_ok().model_id().c_str(),
                  static_cast<unsigned long long>(client.stats().ai_init_ok_total));
    }
    client.stop();
  }
  ::kill(server, SIGTERM);
  int status = 0;
  ::waitpid(server, &status, 0);
  if (detections <= 0) {
    std::fprintf(stderr, "FAIL: no detections came back\n");
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
