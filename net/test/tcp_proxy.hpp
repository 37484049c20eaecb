#pragma once
// A fault-injecting TCP proxy for tests (worker protocol and S3 registry): fragments, stalls and cuts.
#include <sys/socket.h>

#include <array>
#include <asio.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace aitw::net::testing {

using asio::ip::tcp;

// A TCP proxy on loopback. Each accepted connection is pumped in both directions by its own threads.
// mode: Pass (as is), Fragment (every byte its own write), StallUp (client->server stops after
// `after` bytes, connection kept open), StallDown (server->client stops after `after` bytes),
// Cut (both closed after `after` client->server bytes), CutDown (both closed after `after` server->client
// bytes: a download cut mid-body). The mode applies to the next `times` connections (all when 0), later
// ones pass as they are.
class Proxy {
 public:
  enum class Mode { Pass, Fragment, StallUp, StallDown, Cut, CutDown };
  explicit Proxy(std::uint16_t upstream) : upstream_(upstream) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~Proxy() {
    stopping_ = true;
    asio::error_code ec;
    // shutdown() wakes threads blocked in accept()/read_some() on Linux; close() alone does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    shutdown_all();
    if (thread_.joinable()) thread_.join();
    for (auto& t : pumps_) t.join();
    acceptor_.close(ec);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void set_mode(Mode m, std::size_t after = 0, int times = 0) {
    std::lock_guard lock(mu_);
    mode_ = m;
    after_ = after;
    times_ = times;
  }
  // Cuts every open connection (a network blip): clients must reconnect, under the current mode.
  void drop_connections() { shutdown_all(); }
  int connections() const { return connections_; }
  int cuts() const { return cuts_; }  // connections closed by Cut / CutDown

 private:
  // Sockets are only shut down from outside their pumps; they close when both pumps have let go of them.
  void shutdown_all() {
    std::lock_guard lock(mu_);
    asio::error_code ec;
    for (auto& w : sockets_)
      if (auto s = w.lock()) s->shutdown(tcp::socket::shutdown_both, ec);
  }
  void accept_loop() {
    while (!stopping_) {
      auto down = std::make_shared<tcp::socket>(io_);
      asio::error_code ec;
      acceptor_.accept(*down, ec);
      if (ec) return;
      auto up = std::make_shared<tcp::socket>(io_);
      up->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), upstream_), ec);
      if (ec) {
        down->close(ec);
        continue;
      }
      ++connections_;
      std::lock_guard lock(mu_);
      const Mode m = mode_;
      const std::size_t after = after_;
      if (times_ > 0 && --times_ == 0) mode_ = Mode::Pass;
      sockets_.push_back(down);
      sockets_.push_back(up);
      pumps_.emplace_back([=, this] { pump(down, up, m, after, true); });
      pumps_.emplace_back([=, this] { pump(up, down, m, after, false); });
    }
  }
  void pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to, Mode m, std::size_t after,
            bool upward) {
    const bool stall = (m == Mode::StallUp && upward) || (m == Mode::StallDown && !upward);
    const bool cut = (m == Mode::Cut && upward) || (m == Mode::CutDown && !upward);
    std::array<char, 65536> buf;
    std::size_t total = 0;
    asio::error_code ec;
    while (!stopping_ && !ec) {
      const std::size_t n = from->read_some(asio::buffer(buf), ec);
      for (std::size_t i = 0; i < n && !ec;) {
        if (stall && total >= after) {  // keep reading, forward nothing: a stalled peer
          while (!stopping_ && !ec) from->read_some(asio::buffer(buf), ec);
          return;
        }
        if (cut && total >= after) {
          ++cuts_;
          // Both peers see the connection end now. No close(): the other pump may be blocked reading one
          // of these sockets (closing it under that thread is a data race on the socket and on its fd
          // number, found by TSan); shutdown() wakes it, and the sockets close when it has let go of them.
          from->shutdown(tcp::socket::shutdown_both, ec);
          to->shutdown(tcp::socket::shutdown_both, ec);
          return;
        }
        std::size_t chunk = m == Mode::Fragment ? 1 : n - i;
        if (stall || cut) chunk = std::min(chunk, after - total);
        asio::write(*to, asio::buffer(buf.data() + i, chunk), ec);
        i += chunk;
        total += chunk;
      }
    }
    to->shutdown(tcp::socket::shutdown_send, ec);
  }

  std::uint16_t upstream_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  Mode mode_ = Mode::Pass;  // mode_, after_, times_: under mu_
  std::size_t after_ = 0;
  int times_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> cuts_{0};
  std::mutex mu_;
  std::vector<std::weak_ptr<tcp::socket>> sockets_;  // owned by their two pumps
  std::vector<std::thread> pumps_;
};

}  // namespace aitw::net::testing
