#include "connection.hpp"

#include <algorithm>
#include <array>

#include "aitw/base/clock.hpp"
#include "protocol.hpp"

namespace aitw::net {

using asio::use_awaitable;
using asio::ip::tcp;

Connection::Connection(tcp::socket socket, std::uint32_t max_message_bytes, std::size_t max_queued_bytes)
    : socket_(std::move(socket)), decoder_(max_message_bytes), max_queued_(max_queued_bytes) {}

namespace {
// What a queued message holds in memory: its bytes and the string (the deque's slot) around them.
std::size_t held_bytes(const std::string& m) {
  return m.size() + sizeof(std::string);
}
}  // namespace

void Connection::send(const v1::Envelope& e) {
  if (!socket_.is_open() || overflowed_) return;
  std::string m = encode(e);
  if (on_overflow_ && queued_ + held_bytes(m) > max_queued_) {
    overflowed_ = true;
    auto f = on_overflow_;
    f();
    return;
  }
  queued_ += held_bytes(m);
  queued_peak_ = std::max(queued_peak_, queued_);
  outbox_.push_back(std::move(m));
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(socket_.get_executor(), write_loop(shared_from_this()), asio::detached);
  }
}

// The parameter is copied into the coroutine's frame: the connection lives as long as its writer.
asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> /*self*/) {
  bool failed = false;
  try {
    while (!outbox_.empty() && socket_.is_open()) {
      write_started_ = Clock::now();
      co_await asio::async_write(socket_, asio::buffer(outbox_.front()), use_awaitable);
      queued_ -= held_bytes(outbox_.front());
      outbox_.pop_front();
    }
  } catch (const std::exception&) {
    failed = true;
  }
  if (failed && on_write_error_) on_write_error_();
  outbox_.clear();
  queued_ = 0;
  writing_ = false;
  if (closing_) finish_close();
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  closing_since_ = Clock::now();
  asio::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_receive, ec);
  if (!writing_) finish_close();
}

void Connection::close_now() {
  closing_ = true;
  // The outbox is left to the writer, if one is running: the message it is writing must outlive the write,
  // which the closed socket ends; the writer then drops the rest.
  finish_close();
}

void Connection::finish_close() {
  asio::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (on_closed_) {
    auto f = std::move(on_closed_);
    on_closed_ = nullptr;
    f();
  }
}

asio::awaitable<Connection::ReadEnd> Connection::read_messages(
    const std::function<asio::awaitable<void>(v1::Envelope)>& on_message,
    const std::function<void()>& on_malformed) {
  std::array<char, 65536> buf;
  try {
    while (!closing_) {
      const std::size_t n = co_await socket_.async_read_some(asio::buffer(buf), use_awaitable);
      last_rx_ = Clock::now();
      if (!decoder_.buffered()) message_started_ = last_rx_;
      decoder_.feed(buf.data(), n);
      v1::Envelope e;
      for (;;) {
        const auto st = decoder_.next(e);
        if (st == FrameDecoder::Status::NeedMore) break;
        if (st == FrameDecoder::Status::Oversize) co_return ReadEnd::Oversize;
        if (st == FrameDecoder::Status::Malformed) {
          if (on_malformed) on_malformed();
          continue;
        }
        // The rest of the buffer (if any) is the start of the next message.
        message_started_ = decoder_.buffered() ? std::optional(Clock::now()) : std::nullopt;
        co_await on_message(std::move(e));
        if (closing_) co_return ReadEnd::Closed;
      }
      if (!decoder_.buffered()) message_started_.reset();
    }
  } catch (const std::exception&) {
    // the peer went away (or the owner closed, or its handler threw): nothing to answer
  }
  co_return ReadEnd::Closed;
}

asio::awaitable<void> Connection::watch(Deadlines d, std::function<void(Missed)> on_missed) {
  using std::chrono::milliseconds;
  asio::steady_timer t(socket_.get_executor());
  const auto beat = std::max(milliseconds(100), d.heartbeat_timeout / 3);
  // Deadlines finer than the heartbeat are checked at a quarter of their length (10-250 ms), so they are
  // missed by little more than that; silence alone is checked at each heartbeat.
  auto tick = beat;
  if (d.message_timeout.count() > 0 || d.handshake_timeout.count() > 0) {
    if (d.message_timeout.count() > 0) tick = std::min(tick, d.message_timeout / 4);
    if (d.handshake_timeout.count() > 0) tick = std::min(tick, d.handshake_timeout / 4);
    tick = std::clamp(tick, milliseconds(10), milliseconds(250));
  }
  // A graceful close (close()) waits for the writer to flush what is queued, the Error that explains the
  // close among it; a peer that reads nothing would hold that open for ever, its socket and queue with it
  // (and a peer blocked writing to us, since we no longer read, never finds out). So the watch goes on until
  // the socket is closed, and closes it at once when the close has lasted longer than the write timeout
  // (else the heartbeat timeout), or a write has been under way for that long.
  const auto linger = d.write_timeout.count() > 0 ? d.write_timeout : d.heartbeat_timeout;
  auto last_beat = Clock::now();
  while (socket_.is_open()) {
    t.expires_after(tick);
    co_await t.async_wait(use_awaitable);
    if (!socket_.is_open()) break;
    const auto now = Clock::now();
    if (closing_) {
      // Counted from close() too, not only from the start of the write under way: that clock restarts with
      // each message the writer completes, so a writer that still completed one now and then (the kernel's
      // buffers had room left when the close was decided, or the peer drains slowly) held the close, and
      // the socket, open for as long as its queue lasted.
      if (writing_ && (now - write_started_ > linger || now - closing_since_ > linger)) close_now();
      continue;
    }
    std::optional<Missed> missed;
    // A write stalled for the write timeout first, whatever else was missed: that peer does not read, an
    // Error would wait behind the stalled write, so it is closed at once, and as write_timeout (a worker
    // not scheduled for longer than both deadlines finds both missed at once).
    if (d.write_timeout.count() > 0 && writing_ && now - write_started_ > d.write_timeout)
      missed = Missed::WriteStalled;
    else if (d.message_timeout.count() > 0 && message_started_ && now - *message_started_ > d.message_timeout)
      missed = Missed::Message;
    else if (d.handshake_timeout.count() > 0 && !handshake_done_ && now - connected_at_ > d.handshake_timeout)
      missed = Missed::Handshake;
    else if (now - last_rx_ > d.heartbeat_timeout)
      missed = Missed::Silence;
    if (missed == Missed::Silence) {
      // Bytes the peer sent wait unread: the worker is late, not the peer. Its reader is held (dispatch
      // awaits an Init's model load), or it was not scheduled for longer than the deadline and runs this
      // timer before the read of what arrived meanwhile. Judged again at the next tick, once they are read.
      // (Not the message deadline: a peer trickling a message's bytes would keep some unread now and then.)
      asio::error_code ec;
      if (socket_.available(ec) > 0) {
        missed.reset();
      } else {
        // Nor when a read has taken them but its completion has not run yet: a worker stalled past both the
        // release of its held reader and this tick runs both at once, the reader first, whose next read takes
        // every waiting byte at once (a speculative read) and queues its completion behind this tick, which
        // saw no byte waiting and an old last read (a sending peer called silent, once in a clean-clone CI
        // run; Connection.AReadTakenButNotYetHandledIsNotSilence). What is queued runs first, then the
        // silence is judged again.
        co_await asio::post(socket_.get_executor(), use_awaitable);
        if (!socket_.is_open()) break;
        if (closing_) continue;
        if (Clock::now() - last_rx_ <= d.heartbeat_timeout || socket_.available(ec) > 0) missed.reset();
      }
    }
    if (missed) {
      on_missed(*missed);    // closes, at once or once the writer is done
      if (!closing_) break;  // the owner closes some other way: nothing more to watch
      continue;
    }
    if (now - last_beat < beat) continue;
    last_beat = now;
    send(heartbeat_msg(now_ns()));
  }
}

}  // namespace aitw::net
