#include "aitw/net/server.hpp"

#include <openssl/crypto.h>
#include <asio.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "aitw/base/clock.hpp"
#include "aitw/base/defaults.hpp"
#include "aitw/base/log.hpp"
#include "aitw/base/sha256.hpp"
#include "protocol.hpp"
#include "server_impl.hpp"

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

int Server::Impl::active_sessions(const Session* except) const {
  int n = 0;
  for (const auto& [id, x] : sessions)
    n += !x->conn->handshake_pending() && !x->conn->closing() && x.get() != except;
  return n;
}

void Server::Impl::update_state() {
  stats.update([this](ServerStats& s) {
    s.state = !sessions.empty()    ? WorkerState::SessionActive
              : host.loading() > 0 ? WorkerState::Loading
              : host.loaded() > 0  ? WorkerState::Ready
                                   : WorkerState::Idle;
    s.connections_active = sessions.size();
    s.models_loaded = host.loaded();
  });
}

void Server::Impl::count_error(const std::string& cause) {
  stats.update([&cause](ServerStats& s) { ++s.errors_by_cause[cause]; });
}

void Server::Impl::session_closed(std::uint64_t id) {
  const auto it = sessions.find(id);
  if (it == sessions.end()) return;
  const auto s = it->second;
  sessions.erase(it);
  // Before anything below can publish connections_active (host.release does, via update_state): whoever
  // sees the session gone also sees the most it held unsent.
  const auto peak = s->conn->queued_bytes_peak();
  stats.update([peak](ServerStats& st) {
    st.queued_bytes_max_seen = std::max<std::uint64_t>(st.queued_bytes_max_seen, peak);
  });
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
  check_drained();
}

void Server::Impl::close_non_reader(const std::shared_ptr<Session>& s, const std::string& cause,
                                    const std::string& msg) {
  count_error(cause);
  ++s->record.errors;
  if (s->record.end_reason.empty()) s->record.end_reason = msg;
  aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg + " (closing)");
  s->conn->close_now();
}

void Server::Impl::fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
                         const std::string& msg) {
  count_error(cause);
  ++s->record.errors;
  if (s->record.end_reason.empty()) s->record.end_reason = msg;
  aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg + " (closing)");
  send(s, error_msg(code, msg, true));
  close(s);
}

void Server::Impl::non_fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
                             const std::string& msg) {
  count_error(cause);
  ++(cause == "dropped" ? s->record.frames_dropped : s->record.errors);
  send(s, error_msg(code, msg, false));
}

void Server::Impl::init_failed(const std::shared_ptr<Session>& s, const std::string& cause,
                               const std::string& msg) {
  aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg +
                 (s->model_key.empty() ? " (no model loaded for it)" : " (it keeps its current model)"));
  non_fatal(s, kErrModel, cause, msg);
}

void Server::Impl::end_session(const std::shared_ptr<Session>& s, const std::string& reason) {
  if (s->record.end_reason.empty()) s->record.end_reason = reason;
  send(s, end_msg(reason));
  close(s);
}

void Server::Impl::on_result(pipeline::FrameResult&& r) {
  auto it = sessions.find(r.tag);
  if (it == sessions.end()) return;  // the session went away while its frame was inside
  auto s = it->second;
  s->frame_in_flight = false;
  if (r.error.empty()) {
    // Count before sending: the write may start inline and the client may see the Result (and then
    // read /metrics) before this handler returns.
    stats.update([&r, &s](ServerStats& st) {
      ++st.frames_processed_total;
      ++st.results_sent_total;
      st.inference_time_ms.record(r.ms.infer);
      st.inference_time_by_model[s->model_label].record(r.ms.infer);
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
  if (s->held_init) {
    asio::co_spawn(io, run_held_inits(s), asio::detached);  // it sends the Ready
    return;
  }
  if (!s->conn->closing()) {
    s->ready_outstanding = true;
    send(s, ready_msg());
  }
}

awaitable<void> Server::Impl::handle_init(std::shared_ptr<Session> s, v1::Init init) {
  if (!s->init_seen) s->record.started_ms = unix_ms();
  s->init_seen = true;
  s->record.client_id = init.client_id();
  // The model asked for, until one is accepted: a failed hot reload leaves the record on the served one.
  if (s->record.model_sha256.empty())
    s->record.model = init.model().empty() ? std::string(kDefaultModel) : init.model();
  if (draining) {
    // Not fatal and retryable: the client should go to another worker at once (End follows).
    non_fatal(s, kErrDraining, "draining", "draining: this worker is shutting down, connect to another one");
    end_session(s, "draining");
    co_return;
  }
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
  s->model_label = model_label(model, got.path);
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

awaitable<void> Server::Impl::run_held_inits(std::shared_ptr<Session> s) {
  s->init_running = true;
  while (s->held_init && !s->frame_in_flight && !s->conn->closing()) {
    v1::Init init = std::move(*s->held_init);
    s->held_init.reset();
    co_await handle_init(s, std::move(init));
    // A failed Init leaves the session on its model: it gets the Ready its Result did not bring.
    if (s->initialized && !s->ready_outstanding && !s->frame_in_flight && !s->conn->closing()) {
      s->ready_outstanding = true;
      send(s, ready_msg());
    }
  }
  s->init_running = false;
}

awaitable<void> Server::Impl::dispatch(std::shared_ptr<Session> s, v1::Envelope e) {
  const bool frame = e.has_frame();
  stats.update([frame](ServerStats& st) {
    ++st.messages_received_total;
    if (frame) ++st.frames_received_total;
  });
  if (frame) ++s->record.frames_received;
  auto a = on_client_message(*s, e, s->id);
  switch (a.kind) {
    case SessionAction::Kind::Init:
      co_await handle_init(s, std::move(*e.mutable_init()));
      break;
    case SessionAction::Kind::HoldInit:
      s->held_init = std::move(*e.mutable_init());
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

awaitable<void> Server::Impl::reader(std::shared_ptr<Session> s) {
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

awaitable<void> Server::Impl::watchdog(std::shared_ptr<Session> s) {
  const Deadlines d{cfg.heartbeat_timeout, cfg.message_timeout, cfg.init_timeout, cfg.heartbeat_timeout};
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
      case Missed::WriteStalled:
        close_non_reader(s, "write_timeout",
                         "peer has not read what it was sent for " +
                             std::to_string(cfg.heartbeat_timeout.count()) + " ms (the heartbeat timeout)");
        break;
    }
  };
  co_await s->conn->watch(d, on_missed);
}

awaitable<void> Server::Impl::age_limit(std::weak_ptr<Session> weak) {
  const auto age =
      cfg.max_session_age + std::chrono::duration_cast<std::chrono::milliseconds>(
                                cfg.max_session_age * std::uniform_real_distribution<double>(0, 0.25)(rng));
  asio::steady_timer timer(io);
  timer.expires_after(age);
  co_await timer.async_wait(use_awaitable);
  const auto s = weak.lock();
  if (!s || s->conn->closing() || stopping || draining) co_return;
  aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + "): older than max_session_age (" +
                 std::to_string(age.count()) + " ms): ending it");
  if (!s->frame_in_flight && !s->ready_outstanding) {
    end_session(s, "max_session_age");
    co_return;
  }
  // End after the Result of the frame inside, or of the one the outstanding Ready invited: ended at once,
  // that frame would cross End on the wire and be lost to the client. A client that sends nothing for
  // kAgeGrace is ended anyway.
  s->end_after_result = true;
  s->end_reason = "max_session_age";
  if (s->frame_in_flight) co_return;
  constexpr std::chrono::seconds kAgeGrace{2};
  timer.expires_after(kAgeGrace);
  co_await timer.async_wait(use_awaitable);
  const auto still = weak.lock();
  if (still && !still->frame_in_flight && !still->conn->closing() && still->end_after_result)
    end_session(still, still->end_reason);
}

}  // namespace aitw::net
