#include "aitw/net/server.hpp"

#include <asio.hpp>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <sys/stat.h>

#include "aitw/net/session.hpp"
#include "aitw/base/log.hpp"
#include "aitw/base/defaults.hpp"
#include "aitw/base/sha256.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::net {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

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

namespace {

// The file a checked path names: absolute, symlinks and `..` resolved. Throws when it does not exist.
std::string canonical_model_path(const std::string& model) {
  std::error_code ec;
  const auto p = std::filesystem::canonical(model, ec);
  if (ec || !std::filesystem::is_regular_file(p, ec))
    throw model::ModelError("model '" + model + "' not found (no such file in the model directories)");
  return p.string();
}

// What the file at `path` is right now (device, inode, size, modification time): part of a loaded model's key,
// so that an Init naming a file replaced or rewritten on disk loads it again instead of reusing the copy
// loaded before (which keeps serving the sessions on it). Empty when it cannot be stat'ed.
std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  std::ostringstream id;
  id << st.st_dev << ":" << st.st_ino << ":" << st.st_size << ":" << st.st_mtim.tv_sec << "."
     << st.st_mtim.tv_nsec;
  return id.str();
}

}  // namespace

std::optional<std::string> model_refusal(const std::string& model, const std::vector<std::string>& model_dirs) {
  namespace fs = std::filesystem;
  // A name is only looked up inside the model folders: it cannot point anywhere else.
  if (!model::is_model_path(model)) return std::nullopt;
  if (model_dirs.empty())
    return "Init.model '" + model + "' is a path; this worker accepts model names only (start it with --model-dir DIR "
           "to allow paths under DIR)";
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(model, ec), ec);  // resolves symlinks and ..
  if (!ec) {
    for (const auto& d : model_dirs) {
      const fs::path dir = fs::weakly_canonical(fs::absolute(d, ec), ec);
      if (ec) continue;
      const auto rel = target.lexically_relative(dir);
      if (!rel.empty() && *rel.begin() != ".." && rel != ".") return std::nullopt;
    }
  }
  return "Init.model '" + model + "' is outside the allowed model directories (--model-dir); `..` and symlinks "
         "out of them are refused";
}

bool tokens_equal(const std::string& a, const std::string& b) {
  // Hash first: equal-length digests, so neither the content nor the length leaks through timing.
  const Sha256Digest da = sha256(a), db = sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

namespace {

v1::Envelope error_msg(std::uint32_t code, const std::string& message, bool fatal) {
  v1::Envelope e;
  auto* err = e.mutable_error();
  err->set_code(code);
  err->set_message(message);
  err->set_fatal(fatal);
  return e;
}

v1::Envelope ready_msg() {
  v1::Envelope e;
  e.mutable_ready();
  return e;
}

}  // namespace

// Everything below runs on the io thread, except pipeline construction (on the loader thread) and the
// pipeline's result callback (posted back to the io thread).
struct Server::Impl {
  struct Hosted {
    std::shared_ptr<pipeline::Pipeline> pipeline;
    int sessions = 0;
    std::string path;              // the model file
    std::uint64_t generation = 0;  // load order: a higher one holds a newer copy of `path`
  };

  // The protocol state (initialized, ready_outstanding, frame_in_flight, in_flight_ts, init) is the
  // SessionState of net/session.hpp, whose rules dispatch() applies.
  struct Session : std::enable_shared_from_this<Session>, SessionState {
    Session(std::uint64_t id, tcp::socket s, std::uint32_t max_bytes)
        : id(id), socket(std::move(s)), decoder(max_bytes) {}
    std::uint64_t id;
    tcp::socket socket;
    FrameDecoder decoder;
    std::string peer;
    bool init_received = false;  // an Init arrived (authenticated): the connection is a session, not pending
    bool closing = false;           // no more input; close once the outbox is flushed
    bool end_after_result = false;  // shutting down: send End once the frame in flight is answered
    bool writing = false;
    std::deque<std::string> outbox;
    std::string model_key;
    std::shared_ptr<const pipeline::PostOptions> post;  // the session's thresholds and class filter
    Clock::time_point last_rx = Clock::now();
    Clock::time_point connected_at = Clock::now();
    std::optional<Clock::time_point> message_started;  // first byte of a message not yet complete
  };

  int active_sessions(const Session* except = nullptr) const {
    int n = 0;
    for (const auto& [id, x] : sessions) n += x->init_received && !x->closing && x.get() != except;
    return n;
  }

  ServerConfig cfg;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread io_thread;
  asio::thread_pool loader{1};
  std::map<std::string, Hosted> models;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session_id = 1;
  std::uint64_t next_generation = 1;
  int loading = 0;
  // Loads under way, by model key: sessions whose Init needs the same key wait for that load (the timer never
  // expires; it is cancelled when the load ends) instead of loading a second copy.
  std::map<std::string, std::shared_ptr<asio::steady_timer>> loads_in_progress;
  bool stopping = false;
  Clock::time_point last_activity = Clock::now();

  mutable std::mutex stats_mutex;
  ServerStats stats;
  std::condition_variable drained;

  explicit Impl(ServerConfig c) : cfg(std::move(c)) {}

  void count_error(const std::string& cause) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++stats.errors_by_cause[cause];
  }

  void update_state() {
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats.state = !sessions.empty() ? WorkerState::SessionActive
                  : loading > 0     ? WorkerState::Loading
                  : !models.empty() ? WorkerState::Ready
                                    : WorkerState::Idle;
    stats.connections_active = sessions.size();
    stats.models_loaded = models.size();
  }

  // --- writing ------------------------------------------------------------------------------------

  void send(const std::shared_ptr<Session>& s, const v1::Envelope& e) {
    if (!s->socket.is_open()) return;
    s->outbox.push_back(encode(e));
    if (!s->writing) {
      s->writing = true;
      asio::co_spawn(io, write_loop(s), asio::detached);
    }
  }

  awaitable<void> write_loop(std::shared_ptr<Session> s) {
    try {
      while (!s->outbox.empty()) {
        co_await asio::async_write(s->socket, asio::buffer(s->outbox.front()), use_awaitable);
        s->outbox.pop_front();
      }
    } catch (const std::exception&) {
      s->outbox.clear();
    }
    s->writing = false;
    if (s->closing) finish_close(s);
  }

  // Stops reading; the socket closes once what is queued has been written.
  void close(const std::shared_ptr<Session>& s) {
    if (s->closing) return;
    s->closing = true;
    asio::error_code ec;
    s->socket.shutdown(tcp::socket::shutdown_receive, ec);
    if (!s->writing) finish_close(s);
  }

  void finish_close(const std::shared_ptr<Session>& s) {
    asio::error_code ec;
    s->socket.shutdown(tcp::socket::shutdown_both, ec);
    s->socket.close(ec);
    if (sessions.erase(s->id) == 0) return;
    if (auto it = models.find(s->model_key); it != models.end() && it->second.pipeline)
      it->second.pipeline->cancel(s->id);  // its frame waiting for a turn would take one for nobody
    release_model(s->model_key);
    last_activity = Clock::now();
    aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + ") closed");
    update_state();
    drained.notify_all();
  }

  void fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
             const std::string& msg) {
    count_error(cause);
    aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg + " (closing)");
    send(s, error_msg(code, msg, true));
    close(s);
  }

  void non_fatal(const std::shared_ptr<Session>& s, std::uint32_t code, const std::string& cause,
                 const std::string& msg) {
    count_error(cause);
    send(s, error_msg(code, msg, false));
  }

  // A refused or failed Init: logged (once per Init, unlike per-frame errors), the session keeps its model.
  void init_failed(const std::shared_ptr<Session>& s, const std::string& cause, const std::string& msg) {
    aitw::log_warn("session " + std::to_string(s->id) + " (" + s->peer + "): " + msg +
                       (s->model_key.empty() ? " (no model loaded for it)" : " (it keeps its current model)"));
    non_fatal(s, kErrModel, cause, msg);
  }

  // --- models -------------------------------------------------------------------------------------

  // A session stops using the model under `key`. A copy of a file that has since been loaded again (it
  // changed on disk) is unloaded once its last session has left; the current one stays for idle unload.
  void release_model(const std::string& key) {
    if (key.empty()) return;
    auto it = models.find(key);
    if (it == models.end()) return;
    --it->second.sessions;
    retire_superseded(it->second.path);
  }

  // `path` by value: the entry that holds the caller's string may be the one erased here.
  void retire_superseded(std::string path) {
    std::uint64_t newest = 0;
    for (const auto& [k, h] : models)
      if (h.path == path) newest = std::max(newest, h.generation);
    for (auto it = models.begin(); it != models.end();) {
      if (it->second.path == path && it->second.generation < newest && it->second.sessions <= 0) {
        aitw::log_info("unloading the superseded copy of '" + path + "' (the file changed on disk)");
        // Destroyed on the loader thread: it waits for the frames inside, which the I/O thread delivers.
        asio::post(loader, [p = std::move(it->second.pipeline)]() mutable { p.reset(); });
        it = models.erase(it);
      } else {
        ++it;
      }
    }
    update_state();
  }

  // --- results ------------------------------------------------------------------------------------

  void on_result(pipeline::FrameResult&& r) {
    auto it = sessions.find(r.tag);
    if (it == sessions.end()) return;  // the session went away while its frame was inside
    auto s = it->second;
    s->frame_in_flight = false;
    if (r.error.empty()) {
      v1::Envelope e;
      auto* res = e.mutable_result();
      res->set_frame_id(r.frame_id);
      res->set_ts_mono_ns(s->in_flight_ts);
      for (const auto& d : r.detections) {
        auto* o = res->add_detections();
        o->set_class_id(static_cast<std::uint32_t>(d.class_id));
        o->set_score(d.score);
        o->set_x1(d.x1);
        o->set_y1(d.y1);
        o->set_x2(d.x2);
        o->set_y2(d.y2);
      }
      auto* t = res->mutable_times();
      t->set_decode_ms(static_cast<float>(r.ms.decode));
      t->set_preprocess_ms(static_cast<float>(r.ms.preprocess));
      t->set_queue_ms(static_cast<float>(r.ms.queue));
      t->set_infer_ms(static_cast<float>(r.ms.infer));
      t->set_postprocess_ms(static_cast<float>(r.ms.postprocess));
      // Count before sending: the write may start inline and the client may see the Result (and then
      // read /metrics) before this handler returns.
      {
        std::lock_guard<std::mutex> lock(stats_mutex);
        ++stats.frames_processed_total;
        ++stats.results_sent_total;
        stats.inference_time_ms.record(r.ms.infer);
      }
      send(s, e);
    } else {
      non_fatal(s, r.error_cause == "dropped" ? kErrDropped : kErrBadFrame, r.error_cause,
                "frame " + std::to_string(r.frame_id) + ": " + r.error);
    }
    if (s->end_after_result) {
      end_session(s, "server shutting down");
      return;
    }
    if (!s->closing) {
      s->ready_outstanding = true;
      send(s, ready_msg());
    }
  }

  void end_session(const std::shared_ptr<Session>& s, const std::string& reason) {
    v1::Envelope e;
    e.mutable_end()->set_reason(reason);
    send(s, e);
    close(s);
  }

  // --- requests -----------------------------------------------------------------------------------

  // One pipeline per model file as it is on disk: sessions' thresholds and class filters travel with their
  // frames (decode + NMS only), so sessions that differ only in those share the network and take turns.
  static std::string model_key(const std::string& path, const std::string& identity) {
    return path + "|" + identity + "|";
  }

  awaitable<void> handle_init(std::shared_ptr<Session> s, v1::Init init) {
    if (!cfg.auth_token.empty() && !tokens_equal(init.auth_token(), cfg.auth_token)) {
      fatal(s, kErrAuth, "auth_failed",
            init.auth_token().empty() ? "authentication required: Init carries no auth token"
                                      : "authentication failed: wrong auth token");
      co_return;
    }
    if (!s->init_received) {
      if (active_sessions(s.get()) >= cfg.max_sessions) {
        fatal(s, kErrTooManySessions, "too_many_sessions",
              "server is at its limit of " + std::to_string(cfg.max_sessions) + " sessions");
        co_return;
      }
      s->init_received = true;
    }
    const std::string model = init.model().empty() ? std::string(kDefaultModel) : init.model();
    if (const auto refusal = model_refusal(model, cfg.model_dirs)) {
      init_failed(s, "model_not_allowed", *refusal);
      co_return;
    }
    // Resolution may ask the registry (network, retries, a download): on the loader thread, never on the
    // I/O thread that carries every session's frames and heartbeats. A path is loaded exactly as checked
    // (canonical, inside a model directory): no search-folder fallback.
    std::string path, identity, resolve_error;
    co_await asio::co_spawn(
        loader,
        [&]() -> awaitable<void> {
          try {
            path =
                model::is_model_path(model) ? canonical_model_path(model) : model::resolve_model_path(model);
            identity = file_identity(path);
          } catch (const std::exception& e) {
            resolve_error = e.what();
          }
          co_return;
        },
        use_awaitable);
    if (s->closing) co_return;
    if (!resolve_error.empty()) {
      init_failed(s, "model_not_found", resolve_error);
      co_return;
    }
    const std::string key = model_key(path, identity);
    for (auto it = loads_in_progress.find(key); !models.count(key) && it != loads_in_progress.end();
         it = loads_in_progress.find(key)) {
      const auto load_done = it->second;
      asio::error_code ec;
      co_await load_done->async_wait(asio::redirect_error(use_awaitable, ec));
      if (s->closing) co_return;
    }
    if (!models.count(key)) {
      // The key holds the file's identity: another copy of this path loaded means the file changed.
      const bool changed =
          std::any_of(models.begin(), models.end(), [&](const auto& m) { return m.second.path == path; });
      if (changed) aitw::log_info("model file '" + path + "' changed on disk: loading it again");
      pipeline::PipelineConfig pc;
      pc.detector.model_path = path;
      pc.nets = cfg.nets;
      pc.threads_per_net = cfg.threads;
      pc.warm_width = static_cast<int>(init.width());
      pc.warm_height = static_cast<int>(init.height());
      ++loading;
      {
        std::lock_guard<std::mutex> lock(stats_mutex);
        ++stats.model_loads_total;
      }
      update_state();
      const auto load_done = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
      loads_in_progress[key] = load_done;
      const auto t0 = Clock::now();
      std::shared_ptr<pipeline::Pipeline> p;
      std::string error;
      // Loading takes a few hundred milliseconds: on the loader thread, so other sessions keep flowing;
      // the co_spawn'd coroutine runs there and this one resumes on the io thread.
      co_await asio::co_spawn(
          loader,
          [&]() -> awaitable<void> {
            try {
              p = std::make_shared<pipeline::Pipeline>(pc, [this](pipeline::FrameResult&& r) {
                asio::post(io, [this, r = std::move(r)]() mutable { on_result(std::move(r)); });
              });
            } catch (const std::exception& e) {
              error = e.what();
            }
            co_return;
          },
          use_awaitable);
      --loading;
      loads_in_progress.erase(key);
      load_done->cancel();  // wakes the sessions waiting for this key (if it failed, each tries its own)
      if (!p) {
        update_state();
        init_failed(s, "model_load_failed", error);
        co_return;
      }
      {
        std::lock_guard<std::mutex> lock(stats_mutex);
        stats.last_model_load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      }
      if (!models.count(key)) {  // else another session loaded it meanwhile
        auto& h = models[key];
        h.pipeline = std::move(p);
        h.path = path;
        h.generation = next_generation++;
        retire_superseded(path);  // copies of the old file that no session uses any more
      }
    }
    if (s->closing) co_return;
    std::shared_ptr<const pipeline::PostOptions> post;
    try {
      const auto& th = init.thresholds();
      const std::vector<int> classes(th.classes().begin(), th.classes().end());
      post = std::make_shared<pipeline::PostOptions>(models[key].pipeline->detector().post_options(
          th.conf(), th.iou(), static_cast<int>(std::min<std::uint32_t>(th.max_det(), 100000)), classes));
    } catch (const std::exception& e) {
      init_failed(s, "bad_thresholds", e.what());
      co_return;
    }
    s->post = std::move(post);
    if (s->model_key != key) {
      ++models[key].sessions;
      release_model(s->model_key);
    }
    s->model_key = key;
    accept_init(*s, std::move(init));  // the first Ready is outstanding from here
    update_state();

    const auto& det = models[key].pipeline->detector();
    v1::Envelope ok;
    auto* io_ = ok.mutable_init_ok();
    io_->set_model_id(det.model().sha256());
    const auto in =
        s->init.width() && s->init.height()
            ? det.input_size_for(static_cast<int>(s->init.width()), static_cast<int>(s->init.height()))
            : pipeline::InputSize{det.config().imgsz, det.config().imgsz};
    io_->set_input_height(static_cast<std::uint32_t>(in.height));
    io_->set_input_width(static_cast<std::uint32_t>(in.width));
    for (const auto& n : det.class_names()) io_->add_class_names(n);
    io_->set_max_frame_bytes(cfg.max_frame_bytes);
    io_->add_providers("CPU");
    io_->set_preproc("letterbox pad 114, RGB, x1/255, NCHW float32");
    send(s, ok);
    aitw::log_info("session " + std::to_string(s->id) + " (" + s->peer + "): init model '" + path + "'");
    send(s, ready_msg());
  }

  // What each message does in the session's state is decided by on_client_message (net/session.hpp).
  awaitable<void> dispatch(std::shared_ptr<Session> s, v1::Envelope e) {
    if (e.has_frame()) {
      std::lock_guard<std::mutex> lock(stats_mutex);
      ++stats.frames_received_total;
    }
    auto a = on_client_message(*s, e, s->id);
    switch (a.kind) {
      case SessionAction::Kind::Init:
        co_await handle_init(s, std::move(*e.mutable_init()));
        break;
      case SessionAction::Kind::Submit:
        a.frame.post = s->post;
        models[s->model_key].pipeline->submit(std::move(a.frame));
        break;
      case SessionAction::Kind::FrameRejected:
        non_fatal(s, a.code, a.cause, a.message);
        send(s, ready_msg());
        break;
      case SessionAction::Kind::Heartbeat: {
        v1::Envelope hb;
        hb.mutable_heartbeat()->set_ts_mono_ns(e.heartbeat().ts_mono_ns());
        send(s, hb);
        break;
      }
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
    std::array<char, 65536> buf;
    try {
      while (!s->closing) {
        const std::size_t n = co_await s->socket.async_read_some(asio::buffer(buf), use_awaitable);
        s->last_rx = Clock::now();
        if (!s->decoder.buffered()) s->message_started = s->last_rx;
        s->decoder.feed(buf.data(), n);
        v1::Envelope e;
        for (;;) {
          const auto st = s->decoder.next(e);
          if (st == FrameDecoder::Status::NeedMore) break;
          if (st == FrameDecoder::Status::Oversize) {
            fatal(s, kErrFrameTooLarge, "frame_too_large",
                  "message of " + std::to_string(s->decoder.last_length()) +
                      " bytes exceeds max_frame_bytes " + std::to_string(cfg.max_frame_bytes));
            co_return;
          }
          if (st == FrameDecoder::Status::Malformed) {
            non_fatal(s, kErrMalformed, "malformed", "malformed message (not an Envelope)");
            continue;
          }
          // The rest of the buffer (if any) is the start of the next message.
          s->message_started = s->decoder.buffered() ? std::optional(Clock::now()) : std::nullopt;
          co_await dispatch(s, std::move(e));
          if (s->closing) co_return;
        }
        if (!s->decoder.buffered()) s->message_started.reset();
      }
    } catch (const std::exception&) {
      // the peer went away (or we closed): nothing to answer
    }
    close(s);
  }

  // Drops a silent peer, cuts one that stalls mid-message or never sends Init, and sends heartbeats.
  awaitable<void> watchdog(std::shared_ptr<Session> s) {
    asio::steady_timer t(io);
    const auto beat = std::max(std::chrono::milliseconds(100), cfg.heartbeat_timeout / 3);
    const auto tick = std::clamp(std::min({beat, cfg.init_timeout / 4, cfg.message_timeout / 4}),
                                 std::chrono::milliseconds(10), std::chrono::milliseconds(250));
    auto last_beat = Clock::now();
    while (!s->closing) {
      t.expires_after(tick);
      co_await t.async_wait(use_awaitable);
      if (s->closing) break;
      const auto now = Clock::now();
      if (s->message_started && now - *s->message_started > cfg.message_timeout) {
        fatal(s, kErrTimeout, "timeout",
              "peer stalled mid-message (incomplete for " + std::to_string(cfg.message_timeout.count()) + " ms)");
        break;
      }
      if (!s->init_received && now - s->connected_at > cfg.init_timeout) {
        fatal(s, kErrTimeout, "timeout", "no Init within " + std::to_string(cfg.init_timeout.count()) + " ms");
        break;
      }
      if (now - s->last_rx > cfg.heartbeat_timeout) {
        fatal(s, kErrTimeout, "timeout",
              s->decoder.buffered() ? "peer stalled mid-message (silent for longer than the heartbeat timeout)"
                                    : "peer silent for longer than the heartbeat timeout");
        break;
      }
      if (now - last_beat < beat) continue;
      last_beat = now;
      v1::Envelope hb;
      hb.mutable_heartbeat()->set_ts_mono_ns(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
      send(s, hb);
    }
  }

  awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket sock = co_await acceptor.async_accept(use_awaitable);
      if (stopping) break;
      auto s = std::make_shared<Session>(next_session_id++, std::move(sock), cfg.max_frame_bytes);
      asio::error_code ec;
      const auto ep = s->socket.remote_endpoint(ec);
      s->peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
      s->socket.set_option(tcp::no_delay(true), ec);
      {
        std::lock_guard<std::mutex> lock(stats_mutex);
        ++stats.connections_total;
      }
      sessions[s->id] = s;
      if (active_sessions() >= cfg.max_sessions) {
        fatal(s, kErrTooManySessions, "too_many_sessions",
              "server is at its limit of " + std::to_string(cfg.max_sessions) + " sessions");
        continue;
      }
      // Too many connections without Init: the oldest of them makes room (half-open or idle peers
      // cannot lock real clients out).
      std::shared_ptr<Session> oldest;
      int pending = 0;
      for (const auto& [id, x] : sessions) {
        if (x->init_received || x->closing || x == s) continue;
        ++pending;
        if (!oldest || x->connected_at < oldest->connected_at) oldest = x;
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

  // Unloads models when no session has used them for idle_timeout.
  awaitable<void> idle_loop() {
    asio::steady_timer t(io);
    for (;;) {
      t.expires_after(std::min(std::chrono::milliseconds(500), cfg.idle_timeout));
      co_await t.async_wait(use_awaitable);
      if (stopping) break;
      if (!sessions.empty() || loading > 0 || models.empty()) continue;
      if (Clock::now() - last_activity < cfg.idle_timeout) continue;
      aitw::log_info("no session for " + std::to_string(cfg.idle_timeout.count()) + " ms: unloading " +
                         std::to_string(models.size()) + " model(s)");
      models.clear();
      {
        std::lock_guard<std::mutex> lock(stats_mutex);
        ++stats.transitions_to_idle_total;
      }
      update_state();
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
  asio::co_spawn(m.io, m.idle_loop(), asio::detached);
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
  {
    std::unique_lock<std::mutex> lock(m.stats_mutex);
    m.drained.wait_for(lock, std::chrono::seconds(10), [&m] { return m.stats.connections_active == 0; });
  }
  // Pipelines are destroyed on the io thread, which must still run to receive their last callbacks.
  std::promise<void> done;
  asio::post(m.io, [&m, &done] {
    m.models.clear();
    done.set_value();
  });
  done.get_future().wait_for(std::chrono::seconds(10));
  m.io.stop();
  m.io_thread.join();
  m.loader.join();
}

ServerStats Server::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->stats;
}

}  // namespace aitw::net
