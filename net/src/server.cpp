#include "aitw/net/server.hpp"

#include <openssl/crypto.h>
#include <asio.hpp>

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "aitw/base/clock.hpp"
#include "aitw/base/defaults.hpp"
#include "aitw/base/log.hpp"
#include "aitw/base/sha256.hpp"
#include "connection.hpp"
#include "model_host.hpp"
#include "protocol.hpp"
#include "session.hpp"
#include "stats_board.hpp"

namespace aitw::net {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

const char* to_string(WorkerState s) {
  switch (s) {
    case WorkerState::Idle:
      return "IDLE";
    case WorkerState::Loading:
      return "LOADING";
    case WorkerState::Ready:
      return "READY";
    case WorkerState::SessionActive:
      return "SESSION_ACTIVE";
  }
  return "?";
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool tokens_equal(const std::string& a, const std::string& b) {
  // Hash first: equal-length digests, so neither the content nor the length leaks through timing.
  const Sha256Digest da = sha256(a), db = sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

// The acceptor, admission (connections waiting for Init, max_sessions) and each session's loop: messages in,
// through the session rules (session.hpp), to the model host (model_host.hpp) and back out as protocol
// messages (protocol.hpp). Everything below runs on the io thread; the model host loads on its loader thread
// and posts pipeline results back here.
struct Server::Impl {
  // The protocol state (initialized, ready_outstanding, frame_in_flight, in_flight_ts, init) is the
  // SessionState of session.hpp, whose rules dispatch() applies. A connection that has not had an Init
  // accepted (authenticated, admitted) is pending: its handshake is not done.
  struct Session : SessionState {
    Session(std::uint64_t session_id, std::shared_ptr<Connection> c) : id(session_id), conn(std::move(c)) {}
    std::uint64_t id;
    std::shared_ptr<Connection> conn;
    std::string peer;
    bool end_after_result = false;  // shutting down: send End once the frame in flight is answered
    std::string end_reason = "server shutting down";  // the End sent then
    bool aging = false;  // its max_session_age timer runs (from the first InitOk)
    std::string model_key;
    std::shared_ptr<const pipeline::PostOptions> post;  // the session's thresholds and class filter
    // The history's SessionRecord, from the first Init on; frame_t0: when the frame in flight arrived.
    bool init_seen = false;
    SessionRecord record;
    pipeline::LatencyHistogram latency_ms;
    std::int64_t frame_t0 = 0;
  };

  ServerConfig cfg;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread io_thread;
  StatsBoard stats;
  ModelHost host;  // after io: its timers and posted results refer to it
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session_id = 1;
  bool stopping = false;
  std::mt19937_64 rng{std::random_device{}()};  // max_session_age jitter

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        host(
            io, ModelHostConfig{cfg.model_dirs, cfg.nets, cfg.threads, cfg.idle_timeout, cfg.on_model_event},
            stats, [this] { update_state(); },
            [this](pipeline::FrameResult&& r) { on_result(std::move(r)); }) {}

  int active_sessions(const Session* except = nullptr) const {
    int n = 0;
    for (const auto& [id, x] : sessions)
      n += !x->conn->handshake_pending() && !x->conn->closing() && x.get() != except;
    return n;
  }

  void update_state() {
    stats.update([this](ServerStats& s) {
      s.state = !sessions.empty()    ? WorkerState::SessionActive
                : host.loading() > 0 ? WorkerState::Loading
                : host.loaded() > 0  ? WorkerState::Ready
                                     : WorkerState::Idle;
      s.connections_active = sessions.size();
      s.models_loaded = host.loaded();
    });
  }

  void count_error(const std::string& cause) {
    stats.update([&cause](ServerStats& s) { ++s.errors_by_cause[cause]; });
  }

  // --- answering ----------------------------------------------------------------------------------

  static void send(const std::shared_ptr<Session>& s, const v1::Envelope& e) { s->conn->send(e); }

  // Stops reading; the connection closes once what is queued has been written (then session_closed).
  static void close(const std::shared_ptr<Session>& s) { s->conn->close(); }

  void session_closed(std::uint64_t id) {
    const auto it = sessions.find(id);
    if (it == sessions.end()) return;
    const auto s = it->second;
    sessions.erase(it);
    host.withdraw(s->model_key, s->id);
    host.release(s->model_key);
    host.touch();
    aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + ") closed");
    if (s->init_seen && cfg.on_session_end) {
      auto& r = s->record;
      r.session = s->id;
      r.peer = s->peer;
      r.ended_ms = unix_ms();
      r.p50_ms = s->latency_ms.percentile_ms(50);
      r.p95_ms = s->latency_ms.percentile_ms(95);
      r.p99_ms = s->latency_ms.percentile_ms(99);
      if (r.end_reason.empty()) r.end_reason = "connection closed";
      cfg.on_session_end(r);
    }
    update_state();
  }

  void fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
             const std::string& msg) {
    count_error(cause);
    ++s->record.errors;
    if (s->record.end_reason.empty()) s->record.end_reason = msg;
    aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg + " (closing)");
    send(s, error_msg(code, msg, true));
    close(s);
  }

  void non_fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
                 const std::string& msg) {
    count_error(cause);
    ++(cause == "dropped" ? s->record.frames_dropped : s->record.errors);
    send(s, error_msg(code, msg, false));
  }

  // A refused or failed Init: logged (once per Init, unlike per-frame errors), the session keeps its model.
  void init_failed(const std::shared_ptr<Session>& s, const std::string& cause, const std::string& msg) {
    aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg +
                   (s->model_key.empty() ? " (no model loaded for it)" : " (it keeps its current model)"));
    non_fatal(s, kErrModel, cause, msg);
  }

  void end_session(const std::shared_ptr<Session>& s, const std::string& reason) {
    if (s->record.end_reason.empty()) s->record.end_reason = reason;
    send(s, end_msg(reason));
    close(s);
  }

  void on_result(pipeline::FrameResult&& r) {
    auto it = sessions.find(r.tag);
    if (it == sessions.end()) return;  // the session went away while its frame was inside
    auto s = it->second;
    s->frame_in_flight = false;
    if (r.error.empty()) {
      // Count before sending: the write may start inline and the client may see the Result (and then
      // read /metrics) before this handler returns.
      stats.update([&r](ServerStats& st) {
        ++st.frames_processed_total;
        ++st.results_sent_total;
        st.inference_time_ms.record(r.ms.infer);
      });
      ++s->record.frames_processed;
      s->latency_ms.record(static_cast<double>(now_ns() - s->frame_t0) / 1e6);
      send(s, to_result(r, s->in_flight_ts));
    } else {
      non_fatal(s, r.error_cause == "dropped" ? kErrDropped : kErrBadFrame, r.error_cause,
                "frame " + std::to_string(r.frame_id) + ": " + r.error);
    }
    if (s->end_after_result) {
      end_session(s, s->end_reason);
      return;
    }
    if (!s->conn->closing()) {
      s->ready_outstanding = true;
      send(s, ready_msg());
    }
  }

  // --- requests -----------------------------------------------------------------------------------

  // Authentication and admission here; the model is the host's. Whatever fails after admission leaves the
  // session as it was (its previous model, if any).
  awaitable<void> handle_init(std::shared_ptr<Session> s, v1::Init init) {
    if (!s->init_seen) s->record.started_ms = unix_ms();
    s->init_seen = true;
    s->record.client_id = init.client_id();
    // The model asked for, until one is accepted: a failed hot reload leaves the record on the served one.
    if (s->record.model_sha256.empty())
      s->record.model = init.model().empty() ? std::string(kDefaultModel) : init.model();
    if (!cfg.auth_token.empty() && !tokens_equal(init.auth_token(), cfg.auth_token)) {
      fatal(s, kErrAuth, "auth_failed",
            init.auth_token().empty() ? "authentication required: Init carries no auth token"
                                      : "authentication failed: wrong auth token");
      co_return;
    }
    if (s->conn->handshake_pending()) {
      if (active_sessions(s.get()) >= cfg.max_sessions) {
        fatal(s, kErrTooManySessions, "too_many_sessions",
              "server is at its limit of " + std::to_string(cfg.max_sessions) + " sessions");
        co_return;
      }
      s->conn->handshake_done();
    }
    // Named, not temporaries of the co_await expression: GCC 12 destroys the std::string made by a
    // conditional operator inside a co_await expression twice (a double free, reproduced alone). The
    // callbacks handed to coroutines in net are named values too.
    const std::string model = init.model().empty() ? std::string(kDefaultModel) : init.model();
    const std::function<bool()> gone = [s] { return s->conn->closing(); };
    const auto got =
        co_await host.acquire(model, static_cast<int>(init.width()), static_cast<int>(init.height()), gone);
    if (got.abandoned) co_return;
    if (got.key.empty()) {
      init_failed(s, got.cause, got.error);
      co_return;
    }
    const auto& det = host.pipeline(got.key).detector();
    try {
      s->post = std::make_shared<pipeline::PostOptions>(to_post_options(det, init.thresholds()));
    } catch (const std::exception& e) {
      init_failed(s, "bad_thresholds", e.what());
      co_return;
    }
    if (s->model_key != got.key) {
      host.use(got.key);
      host.release(s->model_key);
    }
    s->model_key = got.key;
    s->record.model = model;
    s->record.model_sha256 = det.model().sha256();
    accept_init(*s, std::move(init));  // the first Ready is outstanding from here
    // The age counts from the first InitOk: a session is never ended while its model loads (a load longer
    // than the age would otherwise send its client round for ever).
    if (cfg.max_session_age.count() > 0 && !s->aging) {
      s->aging = true;
      asio::co_spawn(io, age_limit(s), asio::detached);
    }
    update_state();
    send(s, make_init_ok(det, s->init, cfg.max_frame_bytes));
    aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + "): init model '" + got.path + "'");
    send(s, ready_msg());
  }

  // What each message does in the session's state is decided by on_client_message (session.hpp).
  awaitable<void> dispatch(std::shared_ptr<Session> s, v1::Envelope e) {
    if (e.has_frame()) {
      stats.update([](ServerStats& st) { ++st.frames_received_total; });
      ++s->record.frames_received;
    }
    auto a = on_client_message(*s, e, s->id);
    switch (a.kind) {
      case SessionAction::Kind::Init:
        co_await handle_init(s, std::move(*e.mutable_init()));
        break;
      case SessionAction::Kind::Submit:
        a.frame.post = s->post;
        s->frame_t0 = now_ns();
        host.pipeline(s->model_key).submit(std::move(a.frame));
        break;
      case SessionAction::Kind::FrameRejected:
        non_fatal(s, a.code, a.cause, a.message);
        send(s, ready_msg());
        break;
      case SessionAction::Kind::Heartbeat:
        send(s, heartbeat_msg(e.heartbeat().ts_mono_ns()));
        break;
      case SessionAction::Kind::End:
        end_session(s, "client ended the session");
        break;
      case SessionAction::Kind::Error:
        if (a.fatal)
          fatal(s, a.code, a.cause, a.message);
        else
          non_fatal(s, a.code, a.cause, a.message);
        break;
    }
  }

  awaitable<void> reader(std::shared_ptr<Session> s) {
    const std::function<awaitable<void>(v1::Envelope)> on_message = [this, s](v1::Envelope e) {
      return dispatch(s, std::move(e));
    };
    const std::function<void()> on_malformed = [this, s] {
      non_fatal(s, kErrMalformed, "malformed", "malformed message (not an Envelope)");
    };
    const auto end = co_await s->conn->read_messages(on_message, on_malformed);
    if (end == Connection::ReadEnd::Oversize)
      fatal(s, kErrFrameTooLarge, "frame_too_large",
            "message of " + std::to_string(s->conn->oversize_length()) + " bytes exceeds max_frame_bytes " +
                std::to_string(cfg.max_frame_bytes));
    close(s);
  }

  // Drops a silent peer, cuts one that stalls mid-message or never sends Init, and sends heartbeats.
  awaitable<void> watchdog(std::shared_ptr<Session> s) {
    const Deadlines d{cfg.heartbeat_timeout, cfg.message_timeout, cfg.init_timeout};
    const std::function<void(Missed)> on_missed = [this, s](Missed missed) {
      switch (missed) {
        case Missed::Message:
          fatal(s, kErrTimeout, "timeout",
                "peer stalled mid-message (incomplete for " + std::to_string(cfg.message_timeout.count()) +
                    " ms)");
          break;
        case Missed::Handshake:
          fatal(s, kErrTimeout, "timeout",
                "no Init within " + std::to_string(cfg.init_timeout.count()) + " ms");
          break;
        case Missed::Silence:
          fatal(s, kErrTimeout, "timeout",
                s->conn->mid_message()
                    ? "peer stalled mid-message (silent for longer than the heartbeat timeout)"
                    : "peer silent for longer than the heartbeat timeout");
          break;
      }
    };
    co_await s->conn->watch(d, on_missed);
  }

  // max_session_age: the jitter keeps sessions opened together (after a restart) from all leaving together.
  // Weak: a session that closed earlier is not kept alive by its timer.
  awaitable<void> age_limit(std::weak_ptr<Session> weak) {
    const auto age =
        cfg.max_session_age + std::chrono::duration_cast<std::chrono::milliseconds>(
                                  cfg.max_session_age * std::uniform_real_distribution<double>(0, 0.25)(rng));
    asio::steady_timer timer(io);
    timer.expires_after(age);
    co_await timer.async_wait(use_awaitable);
    const auto s = weak.lock();
    if (!s || s->conn->closing() || stopping) co_return;
    aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + "): older than max_session_age (" +
                   std::to_string(age.count()) + " ms): ending it");
    if (s->frame_in_flight) {
      s->end_after_result = true;
      s->end_reason = "max_session_age";
    } else {
      end_session(s, "max_session_age");
    }
  }

  // Admission: a connection beyond max_sessions gets a fatal Error; too many connections without Init make
  // the oldest of them leave (half-open or idle peers cannot lock real clients out).
  awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket sock = co_await acceptor.async_accept(use_awaitable);
      if (stopping) break;
      asio::error_code ec;
      const auto ep = sock.remote_endpoint(ec);
      const std::string peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
      sock.set_option(tcp::no_delay(true), ec);
      auto s = std::make_shared<Session>(next_session_id++,
                                         std::make_shared<Connection>(std::move(sock), cfg.max_frame_bytes));
      s->peer = peer;
      s->conn->on_closed([this, id = s->id] { session_closed(id); });
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
};

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

void Server::stop() {
  auto& m = *impl_;
  if (!m.io_thread.joinable()) return;
  // Stop accepting; answer frames already inside, then End every session.
  asio::post(m.io, [&m] {
    m.stopping = true;
    asio::error_code ec;
    m.acceptor.close(ec);
    for (auto& [id, s] : std::map(m.sessions)) {
      if (s->frame_in_flight)
        s->end_after_result = true;
      else
        m.end_session(s, "server shutting down");
    }
  });
  m.stats.wait_for(std::chrono::seconds(10), [](const ServerStats& s) { return s.connections_active == 0; });
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
