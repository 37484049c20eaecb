#pragma once
// Wire framing of the worker protocol: each message is a uint32 little-endian length followed by that many
// bytes of a protobuf Envelope (proto/aitw.proto). The decoder is incremental (bytes may arrive one at a
// time) and checks every length against the limit before allocating anything for it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aitw.pb.h"

namespace aitw::net {

inline constexpr std::uint32_t kDefaultMaxMessageBytes = 4u << 20;

// The length prefix and the serialized envelope.
std::string encode(const v1::Envelope& message);

class FrameDecoder {
 public:
  enum class Status {
    NeedMore,   // no complete message buffered
    Message,    // `out` holds the next message
    Oversize,   // a length prefix above the limit: the stream cannot be trusted any more (fatal)
    Malformed,  // a complete message that is not an Envelope, or one with no message set; skipped
  };

  explicit FrameDecoder(std::uint32_t max_message_bytes = kDefaultMaxMessageBytes)
      : max_(max_message_bytes) {}

  // Once broken (Oversize) the stream cannot be trusted: further bytes are dropped, so a peer that keeps
  // sending after the fatal error cannot grow the buffer.
  void feed(const char* data, std::size_t n) {
    if (!broken_) buffer_.append(data, n);
  }
  // Extracts the next message. After Oversize the decoder stays in that state.
  Status next(v1::Envelope& out);
  // The length announced by the last Oversize prefix (for the error message).
  std::uint32_t last_length() const { return last_length_; }
  std::size_t buffered() const { return buffer_.size() - pos_; }
  // Bytes held, the consumed prefix not yet compacted away included (what the decoder costs in memory).
  std::size_t held() const { return buffer_.size(); }

 private:
  std::uint32_t max_;
  std::string buffer_;
  std::size_t pos_ = 0;
  std::uint32_t last_length_ = 0;
  bool broken_ = false;
};

// Human-readable name of the message in an envelope ("init", "frame", ...), or "none".
const char* message_name(const v1::Envelope& e);

}  // namespace aitw::net
