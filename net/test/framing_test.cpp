#include "aitw/net/framing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

// Random payloads behind valid length prefixes: every one is consumed as exactly one Message or Malformed
// (the stream stays in step), none is Oversize, and the decoder's memory stays bounded over a long stream.
TEST(Framing, GarbagePayloadsKeepTheStreamInStepAndMemoryBounded) {
  std::mt19937 rng(1);
  constexpr std::uint32_t kMax = 1 << 12;
  FrameDecoder d(kMax);
  std::size_t fed = 0, consumed = 0, malformed = 0, max_held = 0;
  v1::Envelope e;
  for (int round = 0; round < 20000; ++round) {
    const std::uint32_t n = rng() % (kMax + 1);
    std::string bytes(4 + n, '\0');
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    for (std::size_t i = 4; i < bytes.size(); ++i) bytes[i] = static_cast<char>(rng());
    // Split at a random point: the first part alone is never a whole message.
    const std::size_t cut = rng() % bytes.size();
    d.feed(bytes.data(), cut);
    EXPECT_EQ(d.next(e), FrameDecoder::Status::NeedMore);
    d.feed(bytes.data() + cut, bytes.size() - cut);
    ++fed;
    for (;;) {
      const auto s = d.next(e);
      ASSERT_NE(s, FrameDecoder::Status::Oversize) << "round " << round;
      if (s == FrameDecoder::Status::NeedMore) break;
      ++consumed;
      if (s == FrameDecoder::Status::Malformed) ++malformed;
    }
    EXPECT_EQ(d.buffered(), 0u);
    max_held = std::max(max_held, d.held());
  }
  EXPECT_EQ(consumed, fed);
  EXPECT_GT(malformed, fed / 2);  // random bytes are rarely a valid Envelope with a message set
  // Compaction: what is held never exceeds the 64 KiB compaction threshold plus one message.
  EXPECT_LE(max_held, 65536u + 2 * (4 + kMax));
}

// Raw garbage: the first bogus length above the limit breaks the stream (fatal) and nothing fed after that
// is kept; below the limit the decoder only waits for more.
TEST(Framing, RawGarbageEndsOversizeOrWaitingNeverGrowingAfterBreak) {
  std::mt19937 rng(2);
  int oversize = 0;
  for (int round = 0; round < 500; ++round) {
    FrameDecoder d(1 << 16);
    std::string bytes(1 + rng() % 2000, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    d.feed(bytes.data(), bytes.size());
    v1::Envelope e;
    FrameDecoder::Status s = FrameDecoder::Status::Message;
    for (int i = 0; i < 1000 && (s == FrameDecoder::Status::Message || s == FrameDecoder::Status::Malformed);
         ++i)
      s = d.next(e);
    ASSERT_TRUE(s == FrameDecoder::Status::NeedMore || s == FrameDecoder::Status::Oversize);
    if (s == FrameDecoder::Status::Oversize) {
      ++oversize;
      EXPECT_GT(d.last_length(), 1u << 16);
      d.feed(bytes.data(), bytes.size());
      EXPECT_EQ(d.held(), 0u);
      EXPECT_EQ(d.next(e), FrameDecoder::Status::Oversize);
    } else {
      EXPECT_LT(d.buffered(), 4u + (1u << 16));
    }
  }
  EXPECT_GT(oversize, 400);  // a random 32-bit length is almost always above 64 KiB
}

TEST(Framing, MessageNames) {
  v1::Envelope e;
  EXPECT_STREQ(message_name(e), "none");
  e.mutable_ready();
  EXPECT_STREQ(message_name(e), "ready");
}

}  // namespace aitw::net
