// The protocol mapping (net/src/protocol.hpp) alone: pipeline results and a detector's model to the messages
// the worker sends, and an Init's thresholds and a Frame's pixel format to the pipeline's options.
#include "protocol.hpp"
#include "aitw/kernel/conv_layer.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "aitw/net/framing.hpp"
#include "aitw/net/server.hpp"

namespace aitw::net {
namespace {

const std::string kYolo11 = std::string(AITW_SHARED_DIR) + "/models/yolo11n.onnx";

// One detector for the whole suite: loading the model is the slow part.
const pipeline::Detector& yolo11n() {
  static const auto det = [] {
    pipeline::DetectorConfig c;
    c.model_path = kYolo11;
    return std::make_unique<pipeline::Detector>(c);
  }();
  return *det;
}

pipeline::FrameResult two_detections() {
  pipeline::FrameResult r;
  r.frame_id = 42;
  r.detections = {{10.5f, 20.25f, 110.f, 220.75f, 0.91f, 0}, {300.f, 40.f, 350.5f, 90.f, 0.375f, 79}};
  r.ms = {1.5, 2.25, 0.125, 35.5, 3.75};
  r.e2e_ms = 99;  // not part of the message
  return r;
}

TEST(Protocol, ResultCarriesFrameIdEchoedTimestampBoxesClassesAndScores) {
  const auto e = to_result(two_detections(), 123456789012345);
  ASSERT_TRUE(e.has_result());
  const auto& res = e.result();
  EXPECT_EQ(res.frame_id(), 42u);
  EXPECT_EQ(res.ts_mono_ns(), 123456789012345);  // the client's, echoed
  ASSERT_EQ(res.detections_size(), 2);
  const auto& a = res.detections(0);
  EXPECT_EQ(a.class_id(), 0u);
  EXPECT_FLOAT_EQ(a.score(), 0.91f);
  EXPECT_FLOAT_EQ(a.x1(), 10.5f);
  EXPECT_FLOAT_EQ(a.y1(), 20.25f);
  EXPECT_FLOAT_EQ(a.x2(), 110.f);
  EXPECT_FLOAT_EQ(a.y2(), 220.75f);
  const auto& b = res.detections(1);  // order kept (descending score, as NMS left it)
  EXPECT_EQ(b.class_id(), 79u);
  EXPECT_FLOAT_EQ(b.score(), 0.375f);
  EXPECT_FLOAT_EQ(b.x1(), 300.f);
  EXPECT_FLOAT_EQ(b.y1(), 40.f);
  EXPECT_FLOAT_EQ(b.x2(), 350.5f);
  EXPECT_FLOAT_EQ(b.y2(), 90.f);
}

TEST(Protocol, ResultCarriesEveryStageTime) {
  const auto e = to_result(two_detections(), 0);
  const auto& t = e.result().times();
  EXPECT_FLOAT_EQ(t.decode_ms(), 1.5f);
  EXPECT_FLOAT_EQ(t.preprocess_ms(), 2.25f);
  EXPECT_FLOAT_EQ(t.queue_ms(), 0.125f);
  EXPECT_FLOAT_EQ(t.infer_ms(), 35.5f);
  EXPECT_FLOAT_EQ(t.postprocess_ms(), 3.75f);
}

TEST(Protocol, ResultWithoutDetectionsStillHasTimesAndSurvivesTheWire) {
  pipeline::FrameResult r;
  r.frame_id = 7;
  r.ms.infer = 12;
  const auto e = to_result(r, -5);  // a client clock before the epoch of ours: echoed as is
  EXPECT_EQ(e.result().detections_size(), 0);
  EXPECT_TRUE(e.result().has_times());
  FrameDecoder d;
  const auto bytes = encode(e);
  d.feed(bytes.data(), bytes.size());
  v1::Envelope back;
  ASSERT_EQ(d.next(back), FrameDecoder::Status::Message);
  EXPECT_EQ(back.result().frame_id(), 7u);
  EXPECT_EQ(back.result().ts_mono_ns(), -5);
  EXPECT_FLOAT_EQ(back.result().times().infer_ms(), 12.f);
}

TEST(Protocol, ErrorReadyEndHeartbeat) {
  const auto err = error_msg(kErrWindowViolation, "Frame 3 sent without a Ready (window is 1)", true);
  ASSERT_TRUE(err.has_error());
  EXPECT_EQ(err.error().code(), kErrWindowViolation);
  EXPECT_EQ(err.error().message(), "Frame 3 sent without a Ready (window is 1)");
  EXPECT_TRUE(err.error().fatal());
  EXPECT_FALSE(error_msg(kErrBadFrame, "x", false).error().fatal());
  EXPECT_TRUE(ready_msg().has_ready());
  EXPECT_EQ(std::string(message_name(ready_msg())), "ready");
  EXPECT_EQ(end_msg("server shutting down").end().reason(), "server shutting down");
  EXPECT_EQ(heartbeat_msg(987654321).heartbeat().ts_mono_ns(), 987654321);
}

TEST(Protocol, PixelFormats) {
  EXPECT_EQ(to_pixel_format(v1::RGB8), pipeline::PixelFormat::RGB8);
  EXPECT_EQ(to_pixel_format(v1::BGR8), pipeline::PixelFormat::BGR8);
  EXPECT_EQ(to_pixel_format(v1::JPEG), pipeline::PixelFormat::JPEG);
  EXPECT_EQ(to_pixel_format(v1::PIXEL_FORMAT_UNSPECIFIED), pipeline::PixelFormat::JPEG);
}

TEST(Protocol, InitOkNamesTheModelItsClassesTheInputForTheDeclaredSizeAndTheLimits) {
  const auto& det = yolo11n();
  v1::Init init;
  init.set_width(640);
  init.set_height(480);
  const auto e = make_init_ok(det, init, 1u << 20);
  ASSERT_TRUE(e.has_init_ok());
  const auto& ok = e.init_ok();
  EXPECT_EQ(ok.model_id(), det.model().sha256());
  EXPECT_EQ(ok.model_id().size(), 64u);
  EXPECT_EQ(ok.input_width(), 640u);  // rectangular: the 640x480 frame letterboxed to 640x480
  EXPECT_EQ(ok.input_height(), 480u);
  ASSERT_EQ(ok.class_names_size(), 80);
  EXPECT_EQ(ok.class_names(0), "person");
  EXPECT_EQ(ok.class_names(79), det.class_names().back());
  EXPECT_EQ(ok.max_frame_bytes(), 1u << 20);
  ASSERT_EQ(ok.providers_size(), 2);
  EXPECT_EQ(ok.providers(0), "CPU");
  // Then what runs the convolutions, at the precision this detector was configured with.
  EXPECT_EQ(ok.providers(1), kernel::convolution_description(det.config().adapt.precision));
  if (kernel::aitw_convolution_active()) {
    EXPECT_NE(ok.providers(1).find("aitw "), std::string::npos) << ok.providers(1);
    EXPECT_NE(ok.providers(1).find(kernel::conv_isa_name(kernel::conv_default_isa())), std::string::npos);
  }
  EXPECT_EQ(ok.preproc(), "letterbox pad 114, RGB, x1/255, NCHW float32");
}

TEST(Protocol, InitOkWithoutAFrameSizeGivesTheSquareInput) {
  const auto& det = yolo11n();
  for (const auto& [w, h] : {std::pair{0u, 0u}, std::pair{640u, 0u}, std::pair{0u, 480u}}) {
    v1::Init init;
    init.set_width(w);
    init.set_height(h);
    const auto ok = make_init_ok(det, init, kDefaultMaxMessageBytes).init_ok();
    EXPECT_EQ(ok.input_width(), static_cast<std::uint32_t>(det.config().imgsz)) << w << "x" << h;
    EXPECT_EQ(ok.input_height(), static_cast<std::uint32_t>(det.config().imgsz)) << w << "x" << h;
  }
}

TEST(Protocol, ThresholdsOverTheDetectorsOwn) {
  const auto& det = yolo11n();
  const auto own = to_post_options(det, v1::Thresholds());  // all zero: the detector's
  EXPECT_FLOAT_EQ(own.conf, det.config().conf);
  EXPECT_FLOAT_EQ(own.iou, det.config().iou);
  EXPECT_EQ(own.max_det, det.config().max_det);
  EXPECT_TRUE(own.class_mask.empty());

  v1::Thresholds th;
  th.set_conf(0.6f);
  th.set_iou(0.3f);
  th.set_max_det(5);
  th.add_classes(0);
  th.add_classes(2);
  const auto o = to_post_options(det, th);
  EXPECT_FLOAT_EQ(o.conf, 0.6f);
  EXPECT_FLOAT_EQ(o.iou, 0.3f);
  EXPECT_EQ(o.max_det, 5);
  ASSERT_EQ(o.class_mask.size(), 80u);
  EXPECT_EQ(o.class_mask[0], 1);
  EXPECT_EQ(o.class_mask[1], 0);
  EXPECT_EQ(o.class_mask[2], 1);
}

TEST(Protocol, MaxDetIsCappedAndBadClassIdsAreRefused) {
  const auto& det = yolo11n();
  v1::Thresholds th;
  th.set_max_det(0xFFFFFFFFu);  // would be negative as an int
  EXPECT_EQ(to_post_options(det, th).max_det, 100000);
  th.add_classes(80);
  try {
    to_post_options(det, th);
    FAIL() << "class 80 accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("class id 80 out of range"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aitw::net
