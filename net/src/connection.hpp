#pragma once
// One TCP connection of the worker protocol, the same on both ends (the server's sessions, the client):
// length-prefixed Envelopes read off the socket, an outbox drained by a single writer coroutine (Asio allows
// one async_write at a time per socket, and messages must not interleave), and the deadlines that keep a
// connection from hanging on a silent or stalled peer. What the messages mean is the owner's business.
// Everything runs on the io thread that owns the socket; nothing here is thread-safe.
#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "aitw.pb.h"
#include "aitw/net/framing.hpp"

namespace aitw::net {

// The deadlines a connection watches (0 = not watched).
struct Deadlines {
  // Nothing received for this long: the peer is gone. A heartbeat goes out every third of it (>= 100 ms).
  std::chrono::milliseconds heartbeat_timeout{10000};
  // A message whose first bytes arrived must be complete within this: trickling bytes does not extend it.
  std::chrono::milliseconds message_timeout{0};
  // The owner's first exchange (the server: an accepted Init) must be done within this after connecting.
  std::chrono::milliseconds handshake_timeout{0};
  // A write under way for this long: the peer does not read (its buffers and ours are full).
  std::chrono::milliseconds write_timeout{0};
};

// Which deadline was missed.
enum class Missed { Message, Handshake, Silence, WriteStalled };

// What a connection may hold unsent before it gives up on its peer (a peer that sends but never reads would
// otherwise grow the worker's memory without bound).
inline constexpr std::size_t kDefaultMaxQueuedBytes = 1u << 20;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;
  // Why the reader stopped.
  enum class ReadEnd {
    Closed,    // the connection was closed, the peer went away, or a handler threw
    Oversize,  // a length prefix above the limit (oversize_length()): the stream cannot be trusted any more
  };

  Connection(asio::ip::tcp::socket socket, std::uint32_t max_message_bytes,
             std::size_t max_queued_bytes = kDefaultMaxQueuedBytes);

  // Queues a message; the writer coroutine starts if it is not running. Dropped once the socket is closed.
  // A message that would take the unsent bytes above max_queued_bytes is dropped and on_overflow is called
  // (once): the owner closes. Unset: nothing is bounded.
  void send(const v1::Envelope& e);
  void on_overflow(std::function<void()> f) { on_overflow_ = std::move(f); }
  // The most ever queued unsent (message bytes plus the string that holds each), the figure bounded above.
  std::size_t queued_bytes_peak() const { return queued_peak_; }
  // Stops reading; the socket closes once what is queued has been written. Idempotent.
  void close();
  // Closes the socket now; what is queued is dropped. Idempotent.
  void close_now();
  bool closing() const { return closing_; }

  // Called once, when the socket has been closed (by close() or close_now()).
  void on_closed(std::function<void()> f) { on_closed_ = std::move(f); }
  // Called when a write fails (the peer is gone); what is queued is dropped. Unset: the reader finds out.
  void on_write_error(std::function<void()> f) { on_write_error_ = std::move(f); }

  // Reads until closing() or the peer goes away (Closed), or an oversize length prefix (Oversize, nothing
  // closed). Each message goes to `on_message`, awaited before the next one is decoded; a complete message
  // that is not an Envelope goes to `on_malformed` and is skipped. The caller keeps the connection alive.
  asio::awaitable<ReadEnd> read_messages(const std::function<asio::awaitable<void>(v1::Envelope)>& on_message,
                                         const std::function<void()>& on_malformed);

  // Sends heartbeats and checks the deadlines until closing(); on the first missed one calls `on_missed`
  // (which decides what to tell the peer and closes). A stalled write is checked first; silence is not
  // judged while bytes the peer sent wait unread (the worker is late, not the peer). Returns once the socket
  // is closed: a graceful close still under way after the write timeout (else the heartbeat timeout),
  // counted from close() or from the start of the write under way, whichever is earlier, is made at once
  // (close_now). The caller keeps the connection alive.
  asio::awaitable<void> watch(Deadlines deadlines, std::function<void(Missed)> on_missed);
  // The first exchange is done: the handshake deadline no longer applies.
  void handshake_done() { handshake_done_ = true; }
  bool handshake_pending() const { return !handshake_done_; }

  // The bytes of an incomplete message are buffered.
  bool mid_message() const { return decoder_.buffered() > 0; }
  std::uint32_t oversize_length() const { return decoder_.last_length(); }
  Clock::time_point connected_at() const { return connected_at_; }

 private:
  asio::awaitable<void> write_loop(std::shared_ptr<Connection> self);
  void finish_close();

  asio::ip::tcp::socket socket_;
  FrameDecoder decoder_;
  std::deque<std::string> outbox_;
  std::size_t max_queued_, queued_ = 0, queued_peak_ = 0;
  bool overflowed_ = false;
  Clock::time_point write_started_;
  bool writing_ = false;
  bool closing_ = false;
  Clock::time_point closing_since_;  // when close() was called
  bool handshake_done_ = false;
  std::function<void()> on_closed_, on_write_error_, on_overflow_;
  Clock::time_point connected_at_ = Clock::now();
  Clock::time_point last_rx_ = connected_at_;
  std::optional<Clock::time_point> message_started_;  // first byte of a message not yet complete
};

}  // namespace aitw::net
