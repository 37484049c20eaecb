// Wire compatibility: every protocol message type, encoded by the C++ code with fixed field values, must
// give exactly the bytes committed in proto/golden/. The Node and Python clients decode and re-encode the
// same files byte for byte (clients/*/test), so a change of encoding on either side fails a test.
//
// proto/golden/messages.bin: one framed Envelope per message type (uint32 LE length + Envelope, as on the
// wire), in the order of kGoldenMessages; proto/golden/recording_header.bin: a RecordingHeader, framed the
// same way. Every field is set (proto3 leaves defaults off the wire) with values whose encodings stress
// the codecs: 64-bit ids above 2^53, a negative int64 timestamp, floats, packed repeated fields.
//
// Regenerate only for a deliberate, compatible change (then say why in the commit):
//   ./build/tests/aitw_wire_golden_test --write proto/golden
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aitw.pb.h"

namespace aitw {
namespace {

const std::string kGoldenDir = AITW_GOLDEN_DIR;

v1::Thresholds thresholds() {
  v1::Thresholds t;
  t.set_conf(0.25f);
  t.set_iou(0.45f);
  t.set_max_det(300);
  for (const std::uint32_t c : {0u, 2u, 79u, 300u}) t.add_classes(c);
  return t;
}

std::vector<v1::Envelope> golden_messages() {
  std::vector<v1::Envelope> all;
  {
    v1::Envelope e;
    auto& m = *e.mutable_init();
    m.set_model("yolo11n@3");
    *m.mutable_thresholds() = thresholds();
    m.set_width(640);
    m.set_height(480);
    m.set_format(v1::JPEG);
    m.set_client_id("edge-agent-7");
    m.set_auth_token("s3cr3t-token");
    all.push_back(e);
  }
  {
    v1::Envelope e;
    auto& m = *e.mutable_frame();
    m.set_frame_id(9007199254740993ull);  // 2^53 + 1: not a JavaScript number
    m.set_ts_mono_ns(-1234567890123456789ll);
    m.set_width(4);
    m.set_height(2);
    m.set_format(v1::BGR8);
    std::string pixels(24, '\0');
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<char>(i * 11);
    m.set_pixels(pixels);
    all.push_back(e);
  }
  {
    v1::Envelope e;
    e.mutable_end()->set_reason("draining");
    all.push_back(e);
  }
  {
    v1::Envelope e;
    e.mutable_heartbeat()->set_ts_mono_ns(1700000000123456789ll);
    all.push_back(e);
  }
  {
    v1::Envelope e;
    auto& m = *e.mutable_init_ok();
    m.set_model_id("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    m.set_input_height(480);
    m.set_input_width(640);
    m.add_class_names("person");
    m.add_class_names("bicycle");
    m.add_class_names("traffic light");
    m.set_max_frame_bytes(4194304);
    m.add_providers("opencv-dnn");
    m.add_providers("cpu");
    m.set_preproc("letterbox");
    all.push_back(e);
  }
  {
    v1::Envelope e;
    e.mutable_ready();
    all.push_back(e);
  }
  {
    v1::Envelope e;
    auto& m = *e.mutable_result();
    m.set_frame_id(18446744073709551615ull);  // uint64 max
    m.set_ts_mono_ns(123456789012345ll);
    for (int i = 0; i < 2; ++i) {
      auto& d = *m.add_detections();
      d.set_class_id(i == 0 ? 0 : 79);
      d.set_score(i == 0 ? 0.875f : 0.3f);
      d.set_x1(10.5f + i);
      d.set_y1(-2.25f);
      d.set_x2(630.125f);
      d.set_y2(470.0f - i);
    }
    auto& t = *m.mutable_times();
    t.set_decode_ms(1.5f);
    t.set_preprocess_ms(0.75f);
    t.set_queue_ms(0.1f);
    t.set_infer_ms(55.25f);
    t.set_postprocess_ms(0.625f);
    all.push_back(e);
  }
  {
    v1::Envelope e;
    auto& m = *e.mutable_error();
    m.set_code(12);
    m.set_message("authentication failed: wrong auth token");
    m.set_fatal(true);
    all.push_back(e);
  }
  return all;
}

v1::RecordingHeader golden_recording_header() {
  v1::RecordingHeader h;
  h.set_version(1);
  h.set_width(640);
  h.set_height(480);
  h.set_fps(12.5);
  h.set_format(v1::JPEG);
  h.set_source("camera_pan.mp4");
  h.set_created_unix_s(1764547200);
  h.set_frame_count(360);
  return h;
}

void append_framed(std::string& out, const google::protobuf::MessageLite& m) {
  const std::string body = m.SerializeAsString();
  const auto n = static_cast<std::uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += body;
}

std::string encoded_messages() {
  std::string out;
  for (const auto& e : golden_messages()) append_framed(out, e);
  return out;
}

std::string encoded_recording_header() {
  std::string out;
  append_framed(out, golden_recording_header());
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Splits a framed file into its message bodies; fails the test on a truncated frame.
std::vector<std::string> split_frames(const std::string& bytes) {
  std::vector<std::string> bodies;
  std::size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 4) {
      ADD_FAILURE() << "truncated length prefix at byte " << at;
      break;
    }
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    at += 4;
    if (bytes.size() - at < n) {
      ADD_FAILURE() << "frame of " << n << " bytes truncated at byte " << at;
      break;
    }
    bodies.push_back(bytes.substr(at, n));
    at += n;
  }
  return bodies;
}

TEST(WireGolden, EveryEnvelopeCaseIsCovered) {
  std::vector<bool> seen(v1::Envelope::descriptor()->field_count() + 1, false);
  for (const auto& e : golden_messages()) seen.at(static_cast<std::size_t>(e.msg_case())) = true;
  for (int i = 0; i < v1::Envelope::descriptor()->field_count(); ++i) {
    const auto* f = v1::Envelope::descriptor()->field(i);
    EXPECT_TRUE(seen.at(static_cast<std::size_t>(f->number()))) << "no golden message for " << f->name();
  }
}

TEST(WireGolden, CurrentCodeEncodesTheCommittedBytes) {
  const std::string committed = read_file(kGoldenDir + "/messages.bin");
  ASSERT_FALSE(committed.empty()) << kGoldenDir << "/messages.bin missing";
  const auto want = split_frames(committed);
  const auto got = split_frames(encoded_messages());
  ASSERT_EQ(got.size(), want.size());
  const auto msgs = golden_messages();
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], want[i]) << "message " << i << " ("
                               << msgs[i].GetDescriptor()->FindFieldByNumber(msgs[i].msg_case())->name()
                               << ") is encoded differently from the committed golden bytes";
  EXPECT_EQ(encoded_recording_header(), read_file(kGoldenDir + "/recording_header.bin"));
}

TEST(WireGolden, CommittedBytesDecodeToTheMessages) {
  const auto bodies = split_frames(read_file(kGoldenDir + "/messages.bin"));
  const auto msgs = golden_messages();
  ASSERT_EQ(bodies.size(), msgs.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    v1::Envelope e;
    ASSERT_TRUE(e.ParseFromString(bodies[i])) << "message " << i;
    EXPECT_EQ(e.DebugString(), msgs[i].DebugString());
  }
  const auto header = split_frames(read_file(kGoldenDir + "/recording_header.bin"));
  ASSERT_EQ(header.size(), 1u);
  v1::RecordingHeader h;
  ASSERT_TRUE(h.ParseFromString(header[0]));
  EXPECT_EQ(h.DebugString(), golden_recording_header().DebugString());
}

}  // namespace
}  // namespace aitw

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write") == 0) {
    const std::string dir = argv[2];
    std::ofstream(dir + "/messages.bin", std::ios::binary) << aitw::encoded_messages();
    std::ofstream(dir + "/recording_header.bin", std::ios::binary) << aitw::encoded_recording_header();
    return 0;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
