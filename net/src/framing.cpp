#include "aitw/net/framing.hpp"

namespace aitw::net {

std::string encode(const v1::Envelope& message) {
  const std::size_t n = message.ByteSizeLong();
  std::string out(4 + n, '\0');
  out[0] = static_cast<char>(n & 0xff);
  out[1] = static_cast<char>((n >> 8) & 0xff);
  out[2] = static_cast<char>((n >> 16) & 0xff);
  out[3] = static_cast<char>((n >> 24) & 0xff);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + 4));
  return out;
}

FrameDecoder::Status FrameDecoder::next(v1::Envelope& out) {
  if (broken_) return Status::Oversize;
  if (buffer_.size() - pos_ < 4) return Status::NeedMore;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);
  const std::uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  if (n > max_) {
    last_length_ = n;
    broken_ = true;
    buffer_.clear();
    pos_ = 0;
    return Status::Oversize;
  }
  if (buffer_.size() - pos_ - 4 < n) return Status::NeedMore;
  const bool ok = out.ParseFromArray(buffer_.data() + pos_ + 4, static_cast<int>(n));
  pos_ += 4 + static_cast<std::size_t>(n);
  // Compact once the consumed prefix dominates, so a long-lived connection does not grow its buffer.
  if (pos_ > 65536 && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  if (!ok || out.msg_case() == v1::Envelope::MSG_NOT_SET) return Status::Malformed;
  return Status::Message;
}

const char* message_name(const v1::Envelope& e) {
  switch (e.msg_case()) {
    case v1::Envelope::kInit:
      return "init";
    case v1::Envelope::kFrame:
      return "frame";
    case v1::Envelope::kEnd:
      return "end";
    case v1::Envelope::kHeartbeat:
      return "heartbeat";
    case v1::Envelope::kInitOk:
      return "init_ok";
    case v1::Envelope::kReady:
      return "ready";
    case v1::Envelope::kResult:
      return "result";
    case v1::Envelope::kError:
      return "error";
    default:
      return "none";
  }
}

}  // namespace aitw::net
