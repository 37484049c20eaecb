#include "session.hpp"

#include "aitw/net/server.hpp"
#include "protocol.hpp"

namespace aitw::net {
namespace {

SessionAction error(std::uint32_t code, bool fatal, std::string cause, std::string message,
                    SessionAction::Kind kind = SessionAction::Kind::Error) {
  SessionAction a;
  a.kind = kind;
  a.code = code;
  a.fatal = fatal;
  a.cause = std::move(cause);
  a.message = std::move(message);
  return a;
}

SessionAction on_frame(SessionState& s, v1::Frame& f, std::uint64_t tag) {
  if (!s.initialized) return error(kErrFrameBeforeInit, false, "frame_before_init", "Frame before Init");
  if (!s.ready_outstanding)
    return error(kErrWindowViolation, true, "window_violation",
                 "Frame " + std::to_string(f.frame_id()) + " sent without a Ready (window is 1)");
  const auto& init = s.init;
  const auto declared = f.format() == v1::PIXEL_FORMAT_UNSPECIFIED ? init.format() : f.format();
  if ((init.format() != v1::PIXEL_FORMAT_UNSPECIFIED && declared != init.format()) ||
      (init.width() && f.width() && f.width() != init.width()) ||
      (init.height() && f.height() && f.height() != init.height()))
    return error(kErrBadFrame, false, "frame_format_mismatch",
                 "Frame " + std::to_string(f.frame_id()) + " does not match the format declared in Init",
                 SessionAction::Kind::FrameRejected);
  SessionAction a;
  a.kind = SessionAction::Kind::Submit;
  auto& in = a.frame;
  in.frame_id = f.frame_id();
  in.format = to_pixel_format(declared);
  // Sizes above INT_MAX become negative here and are refused by pipeline::decode_frame.
  in.width = static_cast<int>(f.width() ? f.width() : init.width());
  in.height = static_cast<int>(f.height() ? f.height() : init.height());
  in.data = std::move(*f.mutable_pixels());
  in.tag = tag;
  s.ready_outstanding = false;
  s.frame_in_flight = true;
  s.in_flight_ts = f.ts_mono_ns();
  return a;
}

}  // namespace

SessionAction on_client_message(SessionState& s, v1::Envelope& e, std::uint64_t tag) {
  SessionAction a;
  switch (e.msg_case()) {
    case v1::Envelope::kInit:
      a.kind =
          s.frame_in_flight || s.init_running ? SessionAction::Kind::HoldInit : SessionAction::Kind::Init;
      return a;
    case v1::Envelope::kFrame:
      return on_frame(s, *e.mutable_frame(), tag);
    case v1::Envelope::kHeartbeat:
      a.kind = SessionAction::Kind::Heartbeat;
      return a;
    case v1::Envelope::kEnd:
      a.kind = SessionAction::Kind::End;
      return a;
    default:
      return error(kErrUnexpectedMessage, false, "unexpected_message",
                   std::string("unexpected message '") + message_name(e) + "' from a client");
  }
}

void accept_init(SessionState& s, v1::Init init) {
  s.init = std::move(init);
  s.initialized = true;
  s.ready_outstanding = true;
}

}  // namespace aitw::net
