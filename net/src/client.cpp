#include "aitw/net/client.hpp"

#include <asio.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "aitw/base/backoff.hpp"
#include "aitw/base/clock.hpp"
#include "aitw/net/framing.hpp"
#include "aitw/net/server.hpp"
#include "connection.hpp"
#include "protocol.hpp"

namespace aitw::net {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// All protocol state lives on the io thread; the public methods post to it and wait on `cv`.
struct Client::Impl {
  ClientConfig cfg;
  ResultCallback on_result;
  ErrorCallback on_error;
  asio::io_context io;
  std::shared_ptr<Connection> conn;  // the current one (a new one on every reconnect)
  std::thread thread;
  bool stopping = false;
  bool connected = false, ready = false, in_flight = false;
  std::optional<v1::Frame> pending;
  std::int64_t in_flight_ts = 0;

  mutable std::mutex m;  // guards stats, init_ok, and the idle/initialized conditions
  std::condition_variable cv;
  ClientStats stats;
  v1::InitOk init_ok;
  bool initialized = false;
  bool init_refused = false;  // the last Init was refused (model, auth): waiting is pointless
  std::string current;        // "host:port" of the endpoint in use (guarded by m)

  // Set when the worker leaves gracefully (draining, max_session_age): run() moves on without backoff.
  bool leave_now = false;
  bool init_ok_here = false;  // the current connection got an InitOk

  void send(const v1::Envelope& e) {
    if (conn) conn->send(e);
  }

  void disconnect() {
    if (conn) conn->close_now();
    connected = ready = false;
    std::lock_guard<std::mutex> lock(m);
    if (in_flight) ++stats.frames_lost_on_disconnect;  // its result will never come
    in_flight = false;
    stats.ai_frame_inflight = false;
    initialized = false;
    cv.notify_all();
  }

  void send_pending() {
    if (!ready || !pending || in_flight) return;
    v1::Envelope e;
    *e.mutable_frame() = std::move(*pending);
    pending.reset();
    in_flight_ts = e.frame().ts_mono_ns();
    ready = false;
    {
      std::lock_guard<std::mutex> lock(m);
      in_flight = true;
      stats.ai_frame_inflight = true;
      ++stats.ai_frames_sent_total;
    }
    send(e);
  }

  void frame_done() {
    std::lock_guard<std::mutex> lock(m);
    in_flight = false;
    stats.ai_frame_inflight = false;
    cv.notify_all();
  }

  void handle(v1::Envelope& e) {
    switch (e.msg_case()) {
      case v1::Envelope::kInitOk: {
        init_ok_here = true;
        std::lock_guard<std::mutex> lock(m);
        init_ok = e.init_ok();
        initialized = true;
        ++stats.ai_init_ok_total;
        cv.notify_all();
        break;
      }
      case v1::Envelope::kReady:
        ready = true;
        send_pending();
        break;
      case v1::Envelope::kResult: {
        const double latency = static_cast<double>(now_ns() - e.result().ts_mono_ns()) / 1e6;
        {
          std::lock_guard<std::mutex> lock(m);
          ++stats.results_total;
          ++stats.results_by_endpoint[current];
          stats.ai_detections_total += static_cast<std::uint64_t>(e.result().detections_size());
          stats.ai_result_latency_ms.record(latency);
        }
        if (on_result) on_result(e.result(), latency);
        frame_done();
        break;
      }
      case v1::Envelope::kError: {
        {
          std::lock_guard<std::mutex> lock(m);
          ++stats.errors_total;
        }
        if (on_error)
          on_error(e.error());  // before waking wait_initialized: the caller reads what it recorded
        {
          std::lock_guard<std::mutex> lock(m);
          // Only what another try cannot fix: the model, or the token. A full server or an evicted
          // pending connection is retried by the reconnect loop.
          if (!initialized && (e.error().code() == kErrModel || e.error().code() == kErrAuth)) {
            init_refused = true;
            cv.notify_all();
          }
        }
        if (e.error().code() == kErrDraining) {
          // This worker is leaving: go to another now. Nothing of ours is inside it (the Init was refused).
          leave_now = true;
          disconnect();
          break;
        }
        // A non-fatal error about a frame ends that frame (a Ready follows); a fatal one ends the session.
        if (in_flight && !e.error().fatal() && e.error().code() != kErrFrameBeforeInit) frame_done();
        break;
      }
      case v1::Envelope::kEnd:
        // The worker sends End after the Result of the frame in flight: nothing is lost by leaving now.
        leave_now = e.end().reason() == "draining" || e.end().reason() == "max_session_age";
        disconnect();
        break;
      default:
        break;  // heartbeats only refresh last_rx
    }
  }

  // Until the connection closes, the server's stream breaks (an oversize length prefix), or handle() throws
  // (a callback did): run() then disconnects. A message that is not an Envelope is skipped.
  awaitable<void> session(std::shared_ptr<Connection> c) {
    // Named, not temporaries of the co_await expression (see Server::Impl::handle_init).
    const std::function<awaitable<void>(v1::Envelope)> on_message =
        [this](v1::Envelope e) -> awaitable<void> {
      handle(e);
      co_return;
    };
    const std::function<void()> on_malformed;  // skipped
    co_await c->read_messages(on_message, on_malformed);
  }

  // Heartbeats, and a silent server is dropped (run() reconnects).
  awaitable<void> heartbeat(std::shared_ptr<Connection> c) {
    const std::function<void(Missed)> on_missed = [this](Missed) { disconnect(); };
    co_await c->watch(Deadlines{cfg.heartbeat_timeout}, on_missed);
  }

  std::vector<HostPort> endpoint_list() const {
    if (!cfg.endpoints.empty()) return cfg.endpoints;
    return {HostPort{cfg.host, cfg.port}};
  }

  awaitable<void> run() {
    const auto eps = endpoint_list();
    // Per endpoint: its backoff, and when it may be tried again after a failure.
    std::vector<Backoff> backoffs(eps.size(), Backoff(cfg.backoff_initial, cfg.backoff_max));
    std::vector<Clock::time_point> not_before(eps.size());
    // A random first endpoint: clients given the same list spread over it without a balancer.
    std::mt19937_64 rng(std::random_device{}());
    std::size_t at =
        cfg.random_start ? std::uniform_int_distribution<std::size_t>(0, eps.size() - 1)(rng) : 0;
    std::size_t drain_refusals = 0;  // in a row: every worker draining must not make a busy loop
    bool ever_connected = false;
    asio::steady_timer timer(io);
    while (!stopping) {
      const HostPort ep = eps[at];
      {
        std::lock_guard<std::mutex> lock(m);
        current = ep.str();
      }
      leave_now = init_ok_here = false;
      try {
        tcp::resolver resolver(io);
        const auto addrs = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_awaitable);
        tcp::socket socket(io);
        co_await asio::async_connect(socket, addrs, use_awaitable);
        socket.set_option(tcp::no_delay(true));
        const auto c = std::make_shared<Connection>(std::move(socket), kDefaultMaxMessageBytes);
        conn = c;
        // A failed write means the server is gone; a write of an older connection failing late is not news.
        c->on_write_error([this, raw = c.get()] {
          if (conn.get() == raw) disconnect();
        });
        connected = true;
        if (ever_connected) {
          std::lock_guard<std::mutex> lock(m);
          ++stats.ai_reconnects_total;
        }
        ever_connected = true;
        v1::Envelope init;
        *init.mutable_init() = cfg.init;
        {
          std::lock_guard<std::mutex> lock(m);
          init_refused = false;  // a new Init gets a new answer
        }
        send(init);  // re-Init on every (re)connect
        asio::co_spawn(io, heartbeat(c), asio::detached);
        co_await session(c);
      } catch (const std::exception&) {
      }
      const bool graceful = leave_now, served = init_ok_here;
      disconnect();
      if (stopping) break;
      if (graceful) {
        std::lock_guard<std::mutex> lock(m);
        ++stats.graceful_moves_total;
      }
      drain_refusals = graceful && !served ? drain_refusals + 1 : 0;
      // Reset by a session that was served, not by a TCP connect alone: a balancer accepts connections
      // even when every worker behind it is down, and closing them must still grow the backoff.
      if (served) backoffs[at].reset();
      not_before[at] = graceful ? Clock::time_point{} : Clock::now() + backoffs[at].next();
      at = (at + 1) % eps.size();
      // A graceful leave goes on at once (its backoff is not grown); after a failure the next endpoint is
      // tried when its own backoff allows (at once if it has not failed). Only when every endpoint in turn
      // refused as draining does the client pause, for the initial backoff, so as not to spin.
      auto wait = not_before[at] - Clock::now();
      if (graceful && drain_refusals >= eps.size()) wait = cfg.backoff_initial;
      if (wait > Clock::duration::zero()) {
        timer.expires_after(wait);
        co_await timer.async_wait(use_awaitable);
      }
    }
  }
};

Client::Client(ClientConfig config, ResultCallback on_result, ErrorCallback on_error)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  impl_->on_result = std::move(on_result);
  impl_->on_error = std::move(on_error);
}

Client::~Client() {
  stop();
}

void Client::start() {
  auto& m = *impl_;
  asio::co_spawn(m.io, m.run(), asio::detached);
  m.thread = std::thread([&m] {
    try {
      m.io.run();
    } catch (const std::exception&) {
    }
  });
}

bool Client::wait_initialized(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->m);
  impl_->cv.wait_for(lock, timeout, [this] { return impl_->initialized || impl_->init_refused; });
  return impl_->initialized;
}

void Client::submit(v1::Frame frame) {
  if (frame.ts_mono_ns() == 0) frame.set_ts_mono_ns(now_ns());
  asio::post(impl_->io, [m = impl_.get(), f = std::move(frame)]() mutable {
    if (m->pending) {
      std::lock_guard<std::mutex> lock(m->m);
      ++m->stats.ai_drops_latestwins_total;
    }
    m->pending = std::move(f);
    m->send_pending();
  });
}

bool Client::wait_idle(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    // Shared: if the io thread is slow to run the check, the lambda must not outlive its promise.
    auto idle = std::make_shared<std::promise<bool>>();
    auto f = idle->get_future();
    asio::post(impl_->io, [m = impl_.get(), idle] { idle->set_value(!m->pending && !m->in_flight); });
    if (f.wait_for(std::chrono::seconds(1)) == std::future_status::ready && f.get()) return true;
    std::unique_lock<std::mutex> lock(impl_->m);
    impl_->cv.wait_for(lock, std::chrono::milliseconds(20));
  }
  return false;
}

void Client::stop() {
  auto& m = *impl_;
  if (!m.thread.joinable()) return;
  asio::post(m.io, [&m] {
    m.stopping = true;
    m.send(end_msg("client stopped"));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let End leave
  asio::post(m.io, [&m] {
    m.disconnect();
    m.io.stop();
  });
  m.thread.join();
}

std::string Client::endpoint() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  return impl_->current;
}

ClientStats Client::stats() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  return impl_->stats;
}

v1::InitOk Client::init_ok() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  return impl_->init_ok;
}

}  // namespace aitw::net
