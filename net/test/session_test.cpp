// The session rules (net/src/session.hpp) alone, without sockets: which client message is acceptable in which
// session state, what it does to the state, and the Error it gets otherwise (code, fatality, cause).
#include "session.hpp"

#include <gtest/gtest.h>

#include "aitw/net/server.hpp"

namespace aitw::net {
namespace {

using Kind = SessionAction::Kind;

v1::Envelope init(std::uint32_t w = 640, std::uint32_t h = 480, v1::PixelFormat f = v1::JPEG,
                  const std::string& token = "") {
  v1::Envelope e;
  auto* i = e.mutable_init();
  i->set_model("yolo11n");
  i->set_width(w);
  i->set_height(h);
  i->set_format(f);
  if (!token.empty()) i->set_auth_token(token);
  return e;
}

v1::Envelope frame(std::uint64_t id, std::uint32_t w = 640, std::uint32_t h = 480,
                   v1::PixelFormat f = v1::JPEG, std::string pixels = "pixels") {
  v1::Envelope e;
  auto* fr = e.mutable_frame();
  fr->set_frame_id(id);
  fr->set_ts_mono_ns(1000 + static_cast<std::int64_t>(id));
  fr->set_width(w);
  fr->set_height(h);
  fr->set_format(f);
  fr->set_pixels(std::move(pixels));
  return e;
}

v1::Envelope heartbeat() {
  v1::Envelope e;
  e.mutable_heartbeat()->set_ts_mono_ns(5);
  return e;
}

// A session whose Init was accepted (InitOk and the first Ready sent).
SessionState initialized(v1::Envelope i = init()) {
  SessionState s;
  accept_init(s, std::move(*i.mutable_init()));
  return s;
}

void expect_error(const SessionAction& a, Kind kind, std::uint32_t code, bool fatal,
                  const std::string& cause) {
  EXPECT_EQ(a.kind, kind);
  EXPECT_EQ(a.code, code);
  EXPECT_EQ(a.fatal, fatal);
  EXPECT_EQ(a.cause, cause);
  EXPECT_FALSE(a.message.empty());
}

TEST(SessionRules, FrameBeforeInitIsANonFatalErrorAndChangesNothing) {
  SessionState s;
  auto f = frame(1);
  const auto a = on_client_message(s, f, 9);
  expect_error(a, Kind::Error, kErrFrameBeforeInit, false, "frame_before_init");
  EXPECT_EQ(a.message, "Frame before Init");
  EXPECT_FALSE(s.initialized);
  EXPECT_FALSE(s.frame_in_flight);
  EXPECT_EQ(f.frame().pixels(), "pixels");  // not taken
}

TEST(SessionRules, InitIsHandedToTheServerAndAcceptInitOpensTheWindow) {
  SessionState s;
  auto i = init();
  EXPECT_EQ(on_client_message(s, i, 9).kind, Kind::Init);
  EXPECT_FALSE(s.initialized);  // only once the server accepted it (model loaded, InitOk sent)
  accept_init(s, std::move(*i.mutable_init()));
  EXPECT_TRUE(s.initialized);
  EXPECT_TRUE(s.ready_outstanding);
  EXPECT_FALSE(s.frame_in_flight);
  EXPECT_EQ(s.init.width(), 640u);
}

TEST(SessionRules, AcceptedFrameIsSubmittedWithItsPixelsAndUsesTheReady) {
  auto s = initialized();
  auto f = frame(3);
  auto a = on_client_message(s, f, 77);
  ASSERT_EQ(a.kind, Kind::Submit);
  EXPECT_EQ(a.frame.frame_id, 3u);
  EXPECT_EQ(a.frame.tag, 77u);  // the session id, echoed in the pipeline's result
  EXPECT_EQ(a.frame.format, pipeline::PixelFormat::JPEG);
  EXPECT_EQ(a.frame.width, 640);
  EXPECT_EQ(a.frame.height, 480);
  EXPECT_EQ(a.frame.data, "pixels");
  EXPECT_TRUE(f.frame().pixels().empty());  // moved out, not copied
  EXPECT_FALSE(s.ready_outstanding);
  EXPECT_TRUE(s.frame_in_flight);
  EXPECT_EQ(s.in_flight_ts, 1003);
}

TEST(SessionRules, FrameWithoutSizeOrFormatTakesTheInits) {
  auto s = initialized(init(8, 6, v1::RGB8));
  auto f = frame(2, 0, 0, v1::PIXEL_FORMAT_UNSPECIFIED);
  const auto a = on_client_message(s, f, 1);
  ASSERT_EQ(a.kind, Kind::Submit);
  EXPECT_EQ(a.frame.format, pipeline::PixelFormat::RGB8);
  EXPECT_EQ(a.frame.width, 8);
  EXPECT_EQ(a.frame.height, 6);
}

TEST(SessionRules, SecondFrameWithoutReadyIsAFatalWindowViolation) {
  auto s = initialized();
  auto f1 = frame(1), f2 = frame(2);
  ASSERT_EQ(on_client_message(s, f1, 1).kind, Kind::Submit);
  const auto a = on_client_message(s, f2, 1);
  expect_error(a, Kind::Error, kErrWindowViolation, true, "window_violation");
  EXPECT_EQ(a.message, "Frame 2 sent without a Ready (window is 1)");
  EXPECT_TRUE(s.frame_in_flight);  // the first one is still answered
  EXPECT_EQ(s.in_flight_ts, 1001);
}

TEST(SessionRules, FrameNotMatchingTheInitIsRejectedAndTheReadyStays) {
  auto s = initialized(init(640, 480, v1::JPEG));
  for (auto f : {frame(1, 640, 480, v1::RGB8), frame(2, 320, 480), frame(3, 640, 240)}) {
    const auto a = on_client_message(s, f, 1);
    expect_error(a, Kind::FrameRejected, kErrBadFrame, false, "frame_format_mismatch");
    EXPECT_NE(a.message.find("does not match the format declared in Init"), std::string::npos) << a.message;
    EXPECT_TRUE(s.ready_outstanding);  // the server sends Ready again; this one is not used up
    EXPECT_FALSE(s.frame_in_flight);
  }
}

TEST(SessionRules, InitWithoutFormatOrSizeAcceptsAnyFrame) {
  auto s = initialized(init(0, 0, v1::PIXEL_FORMAT_UNSPECIFIED));
  auto f = frame(1, 1920, 1080, v1::BGR8);
  const auto a = on_client_message(s, f, 1);
  ASSERT_EQ(a.kind, Kind::Submit);
  EXPECT_EQ(a.frame.format, pipeline::PixelFormat::BGR8);
  EXPECT_EQ(a.frame.width, 1920);
}

TEST(SessionRules, InitWhileAFrameIsInFlightIsHeldNotRefused) {
  auto s = initialized();
  auto f = frame(1);
  ASSERT_EQ(on_client_message(s, f, 1).kind, Kind::Submit);
  auto i = init(320, 240);
  EXPECT_EQ(on_client_message(s, i, 1).kind, Kind::HoldInit);
  EXPECT_EQ(s.init.width(), 640u);  // the session keeps its Init until the server handles the held one
  EXPECT_TRUE(s.frame_in_flight);
  // Answered (the server's on_result), but another Init is still being handled: held again.
  s.frame_in_flight = false;
  s.init_running = true;
  EXPECT_EQ(on_client_message(s, i, 1).kind, Kind::HoldInit);
  s.init_running = false;
  EXPECT_EQ(on_client_message(s, i, 1).kind, Kind::Init);
  accept_init(s, std::move(*i.mutable_init()));
  EXPECT_EQ(s.init.width(), 320u);
}

TEST(SessionRules, HeartbeatsAreEchoedInAnyStateAndChangeNothing) {
  SessionState fresh;
  auto hb = heartbeat();
  EXPECT_EQ(on_client_message(fresh, hb, 1).kind, Kind::Heartbeat);
  EXPECT_FALSE(fresh.initialized);
  auto s = initialized();
  auto f = frame(1);
  ASSERT_EQ(on_client_message(s, f, 1).kind, Kind::Submit);
  EXPECT_EQ(on_client_message(s, hb, 1).kind, Kind::Heartbeat);
  EXPECT_TRUE(s.frame_in_flight);
  EXPECT_FALSE(s.ready_outstanding);
}

TEST(SessionRules, EndEndsTheSessionInAnyState) {
  v1::Envelope end;
  end.mutable_end()->set_reason("done");
  SessionState fresh;
  EXPECT_EQ(on_client_message(fresh, end, 1).kind, Kind::End);
  auto s = initialized();
  EXPECT_EQ(on_client_message(s, end, 1).kind, Kind::End);
}

TEST(SessionRules, ServerMessagesFromAClientAreUnexpected) {
  auto s = initialized();
  v1::Envelope ok, ready, result, error, none;
  ok.mutable_init_ok();
  ready.mutable_ready();
  result.mutable_result();
  error.mutable_error();
  for (auto* e : {&ok, &ready, &result, &error, &none}) {
    const auto a = on_client_message(s, *e, 1);
    expect_error(a, Kind::Error, kErrUnexpectedMessage, false, "unexpected_message");
    EXPECT_EQ(a.message, std::string("unexpected message '") + message_name(*e) + "' from a client");
  }
  EXPECT_TRUE(s.ready_outstanding);
}

// Authentication is the server's (at Init, before any model work): the rules hand every Init over, token or
// not, and the token is compared whole and in constant time.
TEST(SessionRules, AuthTokenIsTheServersToCheck) {
  SessionState s;
  auto with = init(640, 480, v1::JPEG, "s3cret"), without = init();
  EXPECT_EQ(on_client_message(s, with, 1).kind, Kind::Init);
  EXPECT_EQ(on_client_message(s, without, 1).kind, Kind::Init);
  EXPECT_TRUE(tokens_equal("s3cret", "s3cret"));
  EXPECT_FALSE(tokens_equal("s3cret", "s3cre"));
  EXPECT_FALSE(tokens_equal("s3cret", "s3cret "));
  EXPECT_FALSE(tokens_equal("", "s3cret"));
  EXPECT_TRUE(tokens_equal("", ""));
}

}  // namespace
}  // namespace aitw::net
