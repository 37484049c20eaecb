#pragma once
// The worker protocol's session rules, apart from sockets and coroutines: which client message is
// acceptable in which session state, and what it does. The server (server.cpp) keeps one SessionState
// per connection and acts on the SessionAction; fuzz/fuzz_session.cpp drives the same code with decoded
// bytes. Private to net: tests and fuzzers reach it through the aitw_net_internal target.
#include <cstdint>
#include <string>

#include "aitw.pb.h"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::net {

struct SessionState {
  bool initialized = false;        // an Init was accepted (InitOk sent)
  bool ready_outstanding = false;  // a Ready was sent and no Frame has used it yet
  bool frame_in_flight = false;    // a Frame was submitted and has no Result or Error yet
  std::int64_t in_flight_ts = 0;   // the client's ts_mono_ns of the frame in flight
  bool init_running = false;       // the server is handling an Init (loading its model) apart from the reader
  v1::Init init;                   // the accepted Init
};

struct SessionAction {
  enum class Kind {
    Init,           // handle the Init (auth, model, load); then accept_init()
    HoldInit,       // an Init while a frame is in flight (or another Init is handled): handled right after
                    // that frame's Result, the newest held one only (a client hot-reloading without waiting)
    Submit,         // `frame` goes to the pipeline; the state now has it in flight
    FrameRejected,  // a non-fatal Error (code/cause/message), then Ready again
    Heartbeat,      // echo it
    End,            // the client ended the session
    Error,          // an Error (code/cause/message, fatal or not)
  };
  Kind kind = Kind::Error;
  std::uint32_t code = 0;  // ErrorCode (server.hpp)
  bool fatal = false;
  std::string cause;  // metrics label
  std::string message;
  pipeline::FrameIn frame;  // Submit: the frame, its pixels moved out of the message
};

// What a client message does in state `s`. For an accepted Frame the pixels are moved out of `e` and
// the state is updated (Ready used, frame in flight); nothing else changes the state. `tag` goes to
// FrameIn::tag (the session id).
SessionAction on_client_message(SessionState& s, v1::Envelope& e, std::uint64_t tag);
// An Init was accepted (InitOk goes out next): the first Ready is outstanding.
void accept_init(SessionState& s, v1::Init init);

}  // namespace aitw::net
