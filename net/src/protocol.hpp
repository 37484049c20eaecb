#pragma once
// The worker protocol's messages (proto/aitw.proto) mapped to and from the pipeline's types: what the worker
// sends (InitOk, Ready, Result, Error, End, Heartbeat), and what an Init's thresholds and a Frame's pixel
// format mean to the pipeline. No state and no sockets: each mapping is tested alone
// (net/test/protocol_test.cpp).
#include <cstdint>
#include <string>

#include "aitw.pb.h"
#include "aitw/pipeline/detector.hpp"
#include "aitw/pipeline/pipeline.hpp"

namespace aitw::net {

// What the server says about every model's preprocessing (InitOk.preproc), and the one provider it runs on.
inline constexpr const char* kPreproc = "letterbox pad 114, RGB, x1/255, NCHW float32";
inline constexpr const char* kProvider = "CPU";

v1::Envelope error_msg(std::uint32_t code, const std::string& message, bool fatal);
v1::Envelope ready_msg();
v1::Envelope end_msg(const std::string& reason);
v1::Envelope heartbeat_msg(std::int64_t ts_mono_ns);

// A processed frame (r.error empty): its detections in frame pixels and its stage times. `ts_mono_ns` is
// the client's timestamp of the frame, echoed so that it can measure the latency.
v1::Envelope to_result(const pipeline::FrameResult& r, std::int64_t ts_mono_ns);
// The answer to an accepted Init: the model's id and class names, the network input for the frame size the
// Init declares (the detector's square imgsz when it declares none), and the limits of the session.
v1::Envelope make_init_ok(const pipeline::Detector& det, const v1::Init& init, std::uint32_t max_frame_bytes);

// An Init's thresholds and class filter over the detector's own (0 = the detector's; max_det is capped at
// 100000). Throws ModelError for a class id the model does not have.
pipeline::PostOptions to_post_options(const pipeline::Detector& det, const v1::Thresholds& th);
// PIXEL_FORMAT_UNSPECIFIED (never resolved by an Init either) is taken as JPEG.
pipeline::PixelFormat to_pixel_format(v1::PixelFormat f);

}  // namespace aitw::net
