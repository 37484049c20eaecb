// The bytes a client sends to `aitw serve`, without sockets: the framing decoder, the Envelope parse, the
// session rules the server applies (net/src/session.hpp: which message is acceptable in which state) and the
// pipeline's frame checks for an accepted Frame (pipeline::decode_frame).
//
// Input: one control byte, then the wire bytes.
//   bit 0     max message size 512 bytes (Oversize reachable) instead of kDefaultMaxMessageBytes
//   bits 1-3  how the wire bytes are fed: 1, 2, 3, 7, 64, 1000, 4096 bytes at a time, or all at once
//   bit 4     the server has an auth token ("fuzz-token")
//   bits 5-7  all set: the wire bytes are repeated past 64 KiB (the decoder's buffer compaction), fed at
//             least 4096 bytes at a time, and only the first 16 messages go through the session (cheap:
//             repeated inputs would otherwise dominate the run's time)
// Checked: the chunked decoder yields exactly what the one-shot decoder yields; every message re-encodes
// and decodes to itself; the session state never has a Ready outstanding with a frame in flight; a frame
// is only submitted after Init and with a Ready; the frame checks accept only consistent frames.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "aitw/net/framing.hpp"
#include "aitw/net/server.hpp"
#include "aitw/pipeline/pipeline.hpp"
#include "fuzz_common.hpp"
#include "session.hpp"  // net's private session rules (aitw_net_internal)

namespace {

using aitw::net::FrameDecoder;
using aitw::v1::Envelope;
using Status = FrameDecoder::Status;

struct Event {
  Status status;
  std::string message;  // serialized, for Status::Message
};

// Everything one decoder yields for `wire` fed `chunk` bytes at a time (0 = all at once).
std::vector<Event> decode_all(const std::string& wire, std::size_t chunk, std::uint32_t max,
                              std::vector<Envelope>* messages) {
  FrameDecoder d(max);
  std::vector<Event> out;
  Envelope e;
  std::size_t pos = 0;
  do {
    const std::size_t n = chunk == 0 ? wire.size() : std::min(chunk, wire.size() - pos);
    d.feed(wire.data() + pos, n);
    pos += n;
    for (;;) {
      const Status s = d.next(e);
      if (s == Status::NeedMore) break;
      out.push_back({s, s == Status::Message ? e.SerializeAsString() : std::string()});
      if (s == Status::Oversize) {
        AITW_FUZZ_CHECK(d.last_length() > max);
        AITW_FUZZ_CHECK(d.buffered() == 0);
        AITW_FUZZ_CHECK(d.next(e) == Status::Oversize);  // sticky
        return out;
      }
      if (s == Status::Message) {
        AITW_FUZZ_CHECK(e.msg_case() != Envelope::MSG_NOT_SET);
        if (messages && messages->size() < 256) messages->push_back(e);
      }
    }
  } while (pos < wire.size());
  AITW_FUZZ_CHECK(d.buffered() <= wire.size());
  return out;
}

// What the server does with one message, minus the sockets, the model load and the pipeline threads.
struct Session {
  aitw::net::SessionState state;
  bool auth = false;
  bool closed = false;
  bool answer_pending = false;  // a submitted frame whose result comes after the next message
  cv::Mat scratch;
  std::vector<std::string> outbox;

  void send(const Envelope& e) { outbox.push_back(aitw::net::encode(e)); }
  void error(std::uint32_t code, const std::string& message, bool fatal) {
    Envelope e;
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(message);
    e.mutable_error()->set_fatal(fatal);
    send(e);
    if (fatal) closed = true;
  }
  void ready() {
    Envelope e;
    e.mutable_ready();
    send(e);
  }
  // The pipeline's answer to the frame in flight (Server::Impl::on_result).
  void answer() {
    AITW_FUZZ_CHECK(state.frame_in_flight);
    state.frame_in_flight = false;
    answer_pending = false;
    if (!closed) {
      state.ready_outstanding = true;
      ready();
    }
  }

  void handle(Envelope& e) {
    const bool was_ready = state.ready_outstanding, was_initialized = state.initialized;
    auto a = aitw::net::on_client_message(state, e, 7);
    using Kind = aitw::net::SessionAction::Kind;
    switch (a.kind) {
      case Kind::Init: {
        AITW_FUZZ_CHECK(!state.frame_in_flight);
        const auto& init = e.init();
        if (auth && !aitw::net::tokens_equal(init.auth_token(), "fuzz-token")) {
          error(aitw::net::kErrAuth, "authentication failed", true);
          break;
        }
        const std::string model = init.model().empty() ? "yolo11n" : init.model();
        // No model directories: a path is refused without touching the filesystem.
        if (const auto refusal = aitw::net::model_refusal(model, {})) {
          error(aitw::net::kErrModel, *refusal, false);
          break;
        }
        aitw::net::accept_init(state, std::move(*e.mutable_init()));
        Envelope ok;
        ok.mutable_init_ok()->set_model_id("fuzz");
        ok.mutable_init_ok()->set_input_width(state.init.width());
        ok.mutable_init_ok()->set_input_height(state.init.height());
        send(ok);
        ready();
        break;
      }
      case Kind::HoldInit:  // the server answers it after the Result of the frame in flight
        AITW_FUZZ_CHECK(state.frame_in_flight);
        break;
      case Kind::Submit: {
        AITW_FUZZ_CHECK(was_initialized && was_ready);
        AITW_FUZZ_CHECK(!state.ready_outstanding && state.frame_in_flight);
        AITW_FUZZ_CHECK(a.frame.tag == 7);
        aitw::kernel::ImageView view;
        const auto err =
            aitw::pipeline::decode_frame(a.frame, scratch, view, aitw::fuzz::kFuzzMaxFramePixels);
        if (err) {
          AITW_FUZZ_CHECK(err->cause == "decode_failed" || err->cause == "size_mismatch" ||
                          err->cause == "too_large");
          error(aitw::net::kErrBadFrame, err->message, false);
        } else {
          AITW_FUZZ_CHECK(view.data != nullptr && view.width > 0 && view.height > 0);
          AITW_FUZZ_CHECK(!a.frame.width || view.width == a.frame.width);
          AITW_FUZZ_CHECK(!a.frame.height || view.height == a.frame.height);
          AITW_FUZZ_CHECK(view.row_stride >= 3 * static_cast<std::ptrdiff_t>(view.width));
        }
        // Odd frame ids stay in flight across the next message (the answer is asynchronous).
        if (a.frame.frame_id % 2 == 0)
          answer();
        else
          answer_pending = true;
        break;
      }
      case Kind::FrameRejected:
        AITW_FUZZ_CHECK(!a.fatal && state.ready_outstanding);
        error(a.code, a.message, false);
        ready();
        break;
      case Kind::Heartbeat: {
        Envelope hb;
        hb.mutable_heartbeat()->set_ts_mono_ns(e.heartbeat().ts_mono_ns());
        send(hb);
        break;
      }
      case Kind::End:
        closed = true;
        break;
      case Kind::Error:
        AITW_FUZZ_CHECK(a.code != 0 && !a.cause.empty() && !a.message.empty());
        error(a.code, a.message, a.fatal);
        break;
    }
    AITW_FUZZ_CHECK(!(state.ready_outstanding && state.frame_in_flight));
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  aitw::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const std::uint32_t max = control & 1 ? 512 : aitw::net::kDefaultMaxMessageBytes;
  static constexpr std::size_t kChunks[8] = {1, 2, 3, 7, 64, 1000, 4096, 0};
  std::size_t chunk = kChunks[(control >> 1) & 7];
  std::string wire(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool repeat = (control & 0xE0) == 0xE0 && !wire.empty();
  if (repeat) {
    const std::size_t n = wire.size();
    while (wire.size() <= 65536 + 8) wire.append(wire, 0, n);
    if (chunk != 0 && chunk < 4096) chunk = 4096;
  }

  std::vector<Envelope> messages;
  const auto whole = decode_all(wire, 0, max, &messages);
  const auto chunked = decode_all(wire, chunk, max, nullptr);
  AITW_FUZZ_CHECK(whole.size() == chunked.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    AITW_FUZZ_CHECK(whole[i].status == chunked[i].status);
    AITW_FUZZ_CHECK(whole[i].message == chunked[i].message);
  }

  // At most 256 messages (16 when repeated) go through the session: long repeats are for the decoder.
  Session session;
  session.auth = control & 0x10;
  if (repeat && messages.size() > 16) messages.resize(16);
  for (auto& e : messages) {
    if (session.closed) break;
    // Every message re-encodes and decodes to itself.
    {
      const std::string bytes = aitw::net::encode(e);
      FrameDecoder d(UINT32_MAX);
      d.feed(bytes.data(), bytes.size());
      Envelope back;
      AITW_FUZZ_CHECK(d.next(back) == Status::Message);
      AITW_FUZZ_CHECK(back.SerializeAsString() == e.SerializeAsString());
      AITW_FUZZ_CHECK(d.buffered() == 0);
    }
    AITW_FUZZ_CHECK(std::string(aitw::net::message_name(e)) != "none");
    // A frame left in flight by the previous message is answered after this one (which cannot have
    // been a submitted Frame: the window is 1, handle() checks that a Ready was outstanding).
    const bool pending = session.answer_pending;
    session.handle(e);
    if (pending) session.answer();
  }
  return 0;
}
