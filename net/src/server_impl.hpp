#pragma once
// Server::Impl, private to net: the worker's shared state (sessions, the model host, the stats) and what
// the io thread does with it. server.cpp: each session's loop (messages in, through the session rules, to
// the model host and back out); server_lifecycle.cpp: admission, the drain and the public Server calls.
#include <asio.hpp>

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "aitw/net/records.hpp"
#include "aitw/net/server.hpp"
#include "aitw/pipeline/latency_histogram.hpp"
#include "connection.hpp"
#include "model_host.hpp"
#include "session.hpp"
#include "stats_board.hpp"

namespace aitw::net {

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
    bool end_after_result = false;        // draining or aged: send End once the frame in flight is answered
    std::string end_reason = "draining";  // the End sent then
    bool aging = false;                   // its max_session_age timer runs (from the first InitOk)
    std::optional<v1::Init> held_init;    // an Init that came while a frame was in flight (the newest)
    std::string model_key, model_label;
    std::shared_ptr<const pipeline::PostOptions> post;  // the session's thresholds and class filter
    // The history's SessionRecord, from the first Init on; frame_t0: when the frame in flight arrived.
    bool init_seen = false;
    SessionRecord record;
    pipeline::LatencyHistogram latency_ms;
    std::int64_t frame_t0 = 0;
  };

  ServerConfig cfg;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::thread io_thread;
  StatsBoard stats;
  ModelHost host;  // after io: its timers and posted results refer to it
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session_id = 1;
  bool stopping = false;
  std::mt19937_64 rng{std::random_device{}()};  // max_session_age jitter
  // Drain (SIGTERM): set on the io thread; `drained` is fulfilled once no session past Init is left.
  bool draining = false, drained_signalled = false;
  std::promise<void> drained;
  std::atomic<bool> drain_requested{false};
  DrainReport drain_report;

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        host(
            io,
            ModelHostConfig{cfg.model_dirs, cfg.nets, cfg.threads, cfg.idle_timeout, cfg.on_model_event,
                            cfg.precision},
            stats, [this] { update_state(); },
            [this](pipeline::FrameResult&& r) { on_result(std::move(r)); }) {}

  int active_sessions(const Session* except = nullptr) const;

  void update_state();

  void count_error(const std::string& cause);

  // --- answering ----------------------------------------------------------------------------------

  static void send(const std::shared_ptr<Session>& s, const v1::Envelope& e) { s->conn->send(e); }

  // Stops reading; the connection closes once what is queued has been written (then session_closed).
  static void close(const std::shared_ptr<Session>& s) { s->conn->close(); }

  void session_closed(std::uint64_t id);

  // A peer that does not read what it is sent: no Error (it would not be read either), closed at once.
  void close_non_reader(const std::shared_ptr<Session>& s, const std::string& cause, const std::string& msg);

  void fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
             const std::string& msg);

  void non_fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
                 const std::string& msg);

  // A refused or failed Init: logged (once per Init, unlike per-frame errors), the session keeps its model.
  void init_failed(const std::shared_ptr<Session>& s, const std::string& cause, const std::string& msg);

  void end_session(const std::shared_ptr<Session>& s, const std::string& reason);

  void on_result(pipeline::FrameResult&& r);

  // --- requests -----------------------------------------------------------------------------------

  // Authentication and admission here; the model is the host's. Whatever fails after admission leaves the
  // session as it was (its previous model, if any).
  asio::awaitable<void> handle_init(std::shared_ptr<Session> s, v1::Init init);

  // Inits held while a frame was in flight, handled after its Result, the newest one only. The reader keeps
  // going meanwhile: an Init arriving during the load is held in turn (session.cpp).
  asio::awaitable<void> run_held_inits(std::shared_ptr<Session> s);

  // What each message does in the session's state is decided by on_client_message (session.hpp).
  asio::awaitable<void> dispatch(std::shared_ptr<Session> s, v1::Envelope e);

  asio::awaitable<void> reader(std::shared_ptr<Session> s);

  // Drops a silent peer, cuts one that stalls mid-message or never sends Init, and sends heartbeats.
  asio::awaitable<void> watchdog(std::shared_ptr<Session> s);

  // max_session_age: the jitter keeps sessions opened together (after a restart) from all leaving together.
  // Weak: a session that closed earlier is not kept alive by its timer.
  asio::awaitable<void> age_limit(std::weak_ptr<Session> weak);

  // --- drain (SIGTERM) ------------------------------------------------------------------------------

  void begin_drain();

  void check_drained();

  // The drain timeout: what is left is closed now (End first for those that read).
  void end_drain();

  // Admission: a connection beyond max_sessions gets a fatal Error; too many connections without Init make
  // the oldest of them leave (half-open or idle peers cannot lock real clients out).
  asio::awaitable<void> accept_loop();
};

}  // namespace aitw::net
