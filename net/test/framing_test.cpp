#include "aitw/net/framing.hpp"

#include <gtest/gtest.h>

#include <random>

namespace aitw::net {
namespace {

v1::Envelope frame_msg(std::uint64_t id, std::size_t bytes) {
  v1::Envelope e;
  auto* f = e.mutable_frame();
  f->set_frame_id(id);
  f->set_width(640);
  f->set_height(480);
  f->set_format(v1::JPEG);
  f->set_pixels(std::string(bytes, 'x'));
  return e;
}

}  // namespace

TEST(Framing, LengthPrefixIsLittleEndian) {
  const std::string wire = encode(frame_msg(1, 300));
  const std::uint32_t n = static_cast<unsigned char>(wire[0]) | static_cast<unsigned char>(wire[1]) << 8 |
                          static_cast<unsigned char>(wire[2]) << 16 |
                          static_cast<unsigned char>(wire[3]) << 24;
  EXPECT_EQ(n, wire.size() - 4);
}

TEST(Framing, DecodesMessagesFedOneByteAtATime) {
  std::string wire;
  for (std::uint64_t i = 0; i < 5; ++i) wire += encode(frame_msg(i, 10 + i * 100));
  FrameDecoder d;
  v1::Envelope e;
  std::uint64_t next_id = 0;
  for (char c : wire) {
    d.feed(&c, 1);
    while (true) {
      const auto s = d.next(e);
      if (s == FrameDecoder::Status::NeedMore) break;
      ASSERT_EQ(s, FrameDecoder::Status::Message);
      EXPECT_EQ(e.frame().frame_id(), next_id);
      EXPECT_EQ(e.frame().pixels().size(), 10 + next_id * 100);
      ++next_id;
    }
  }
  EXPECT_EQ(next_id, 5u);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Framing, OversizeLengthIsRejectedBeforeItsBytesArrive) {
  FrameDecoder d(1024);
  const unsigned char prefix[4] = {0x00, 0x00, 0x00, 0x40};  // 1 GiB announced, nothing else sent
  d.feed(reinterpret_cast<const char*>(prefix), 4);
  v1::Envelope e;
  EXPECT_EQ(d.next(e), FrameDecoder::Status::Oversize);
  EXPECT_EQ(d.last_length(), 1u << 30);
  EXPECT_EQ(d.buffered(), 0u);  // nothing kept
  d.feed("more", 4);
  EXPECT_EQ(d.next(e), FrameDecoder::Status::Oversize);  // stays broken
}

TEST(Framing, MalformedPayloadIsSkippedAndTheStreamGoesOn) {
  FrameDecoder d;
  const char junk[] = {3, 0, 0, 0, '\xff', '\xff', '\xff'};  // 3 bytes that are not protobuf
  d.feed(junk, sizeof junk);
  const std::string empty = encode(v1::Envelope());  // an Envelope with no message set
  d.feed(empty.data(), empty.size());
  const std::string good = encode(frame_msg(9, 5));
  d.feed(good.data(), good.size());
  v1::Envelope e;
  EXPECT_EQ(d.next(e), FrameDecoder::Status::Malformed);
  EXPECT_EQ(d.next(e), FrameDecoder::Status::Malformed);
  ASSERT_EQ(d.next(e), FrameDecoder::Status::Message);
  EXPECT_EQ(e.frame().frame_id(), 9u);
}

TEST(Framing, RandomGarbageNeverCrashes) {
  std::mt19937 rng(1);
  for (int round = 0; round < 200; ++round) {
    FrameDecoder d(1 << 16);
    std::string bytes(rng() % 2000, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    d.feed(bytes.data(), bytes.size());
    v1::Envelope e;
    for (int i = 0; i < 1000; ++i) {
      const auto s = d.next(e);
      if (s == FrameDecoder::Status::NeedMore || s == FrameDecoder::Status::Oversize) break;
    }
  }
}

TEST(Framing, MessageNames) {
  v1::Envelope e;
  EXPECT_STREQ(message_name(e), "none");
  e.mutable_ready();
  EXPECT_STREQ(message_name(e), "ready");
}

}  // namespace aitw::net
