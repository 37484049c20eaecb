#include <asio.hpp>

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "aitw/base/log.hpp"
#include "protocol.hpp"
#include "server_impl.hpp"

namespace aitw::net {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

void Server::Impl::begin_drain() {
  draining = true;
  stats.update([](ServerStats& st) { st.draining = true; });
  for (auto& [id, s] : std::map(sessions)) {
    if (s->conn->handshake_pending() || s->conn->closing()) continue;
    ++drain_report.sessions;
    if (s->frame_in_flight)
      s->end_after_result = true;
    else
      end_session(s, "draining");
  }
  check_drained();
}

void Server::Impl::check_drained() {
  if (!draining || drained_signalled) return;
  for (const auto& [id, s] : sessions)
    if (!s->conn->handshake_pending()) return;
  drained_signalled = true;
  drained.set_value();
}

void Server::Impl::end_drain() {
  for (auto& [id, s] : std::map(sessions)) {
    if (s->conn->handshake_pending()) {
      end_session(s, "draining");
      continue;
    }
    ++drain_report.cut;
    aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer +
                   "): still there at the drain timeout (closing)");
    s->conn->send(end_msg("draining"));
    s->conn->close_now();
  }
}

awaitable<void> Server::Impl::accept_loop() {
  for (;;) {
    tcp::socket sock = co_await acceptor.async_accept(use_awaitable);
    if (stopping) break;
    asio::error_code ec;
    const auto ep = sock.remote_endpoint(ec);
    const std::string peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    sock.set_option(tcp::no_delay(true), ec);
    auto s = std::make_shared<Session>(
        next_session_id++,
        std::make_shared<Connection>(std::move(sock), cfg.max_frame_bytes, cfg.max_queued_bytes));
    s->peer = peer;
    s->conn->on_closed([this, id = s->id] { session_closed(id); });
    s->conn->on_overflow([this, id = s->id] {
      if (const auto it = sessions.find(id); it != sessions.end())
        close_non_reader(it->second, "send_queue_full",
                         "peer does not read: more than " + std::to_string(cfg.max_queued_bytes) +
                             " bytes of replies unsent");
    });
    stats.update([](ServerStats& st) { ++st.connections_total; });
    sessions[s->id] = s;
    if (active_sessions() >= cfg.max_sessions) {
      fatal(s, kErrTooManySessions, "too_many_sessions",
            "server is at its limit of " + std::to_string(cfg.max_sessions) + " sessions");
      continue;
    }
    std::shared_ptr<Session> oldest;
    int pending = 0;
    for (const auto& [id, x] : sessions) {
      if (!x->conn->handshake_pending() || x->conn->closing() || x == s) continue;
      ++pending;
      if (!oldest || x->conn->connected_at() < oldest->conn->connected_at()) oldest = x;
    }
    if (pending >= cfg.max_pending && oldest)
      fatal(oldest, kErrTooManySessions, "pending_evicted",
            "too many connections waiting for Init (" + std::to_string(cfg.max_pending) +
                "): closing the oldest");
    update_state();
    aitw::log_info("session " + std::to_string(s->id) + " connected from " + s->peer);
    asio::co_spawn(io, reader(s), asio::detached);
    asio::co_spawn(io, watchdog(s), asio::detached);
  }
}

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() {
  stop();
}

void Server::start() {
  auto& m = *impl_;
  try {
    const tcp::endpoint ep(asio::ip::make_address(m.cfg.host), m.cfg.port);
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen();
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + m.cfg.host + ":" + std::to_string(m.cfg.port) + ": " +
                             e.what());
  }
  asio::co_spawn(m.io, m.accept_loop(), asio::detached);
  asio::co_spawn(m.io, m.host.unload_when_idle([&m] { return m.stopping || !m.sessions.empty(); }),
                 asio::detached);
  m.io_thread = std::thread([&m] {
    for (;;) {
      try {
        m.io.run();
        break;
      } catch (const std::exception& e) {
        aitw::log_error(std::string("server io loop: ") + e.what());
      }
    }
  });
  aitw::log_info("serving on " + m.cfg.host + ":" + std::to_string(port()));
}

std::uint16_t Server::port() const {
  asio::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

DrainReport Server::drain(std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  if (!m.io_thread.joinable() || m.drain_requested.exchange(true)) return {};
  const auto t0 = std::chrono::steady_clock::now();
  auto drained = m.drained.get_future();
  aitw::log_info("draining: /readyz answers 503, new Inits get Error " + std::to_string(kErrDraining) +
                 " (draining), sessions end after their frame in flight (timeout " +
                 std::to_string(timeout.count()) + " ms)");
  asio::post(m.io, [&m] { m.begin_drain(); });
  const bool all = drained.wait_for(timeout) == std::future_status::ready;
  std::promise<DrainReport> report;
  asio::post(m.io, [&m, &report, all] {
    if (!all) m.end_drain();
    report.set_value(m.drain_report);
  });
  auto r = report.get_future().get();
  r.ended = r.sessions - r.cut;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  aitw::log_info("drained " + std::to_string(r.sessions) + " session(s) in " + std::to_string(r.seconds) +
                 " s: " + std::to_string(r.ended) + " ended with End(\"draining\") after their frame, " +
                 std::to_string(r.cut) + " closed at the drain timeout");
  return r;
}

void Server::stop() {
  auto& m = *impl_;
  if (!m.io_thread.joinable()) return;
  drain(m.cfg.drain_timeout);
  // Stop accepting; what is left (connections that never sent Init) gets End and is closed.
  asio::post(m.io, [&m] {
    m.stopping = true;
    asio::error_code ec;
    m.acceptor.close(ec);
    for (auto& [id, s] : std::map(m.sessions)) m.end_session(s, "draining");
  });
  m.stats.wait_for(std::chrono::seconds(2), [](const ServerStats& s) { return s.connections_active == 0; });
  // Pipelines are destroyed on the io thread, which must still run to receive their last callbacks.
  std::promise<void> done;
  asio::post(m.io, [&m, &done] {
    m.host.unload_all();
    done.set_value();
  });
  done.get_future().wait_for(std::chrono::seconds(10));
  m.io.stop();
  m.io_thread.join();
  m.host.join();
}

ServerStats Server::stats() const {
  return impl_->stats.snapshot();
}

}  // namespace aitw::net
