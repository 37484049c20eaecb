#include "aitw/datasets/recording.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace aitw::datasets {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("aitw_rec_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

v1::Frame frame(std::uint64_t id, std::size_t bytes) {
  v1::Frame f;
  f.set_frame_id(id);
  f.set_ts_mono_ns(static_cast<std::int64_t>(id) * 83'333'333);
  f.set_width(64);
  f.set_height(48);
  f.set_format(v1::JPEG);
  f.set_pixels(std::string(bytes, static_cast<char>('a' + id % 26)));
  return f;
}

fs::path write_three(const std::string& name) {
  const auto path = temp_file(name);
  v1::RecordingHeader h;
  h.set_version(1);
  h.set_width(64);
  h.set_height(48);
  h.set_fps(12);
  h.set_format(v1::JPEG);
  h.set_source("unit test");
  RecordingWriter w(path.string(), h);
  for (std::uint64_t i = 0; i < 3; ++i) w.write(frame(i, 100 + i));
  w.close();
  return path;
}

void expect_error(const fs::path& path, const std::string& needle) {
  try {
    RecordingReader r(path.string());
    while (r.next()) {
    }
    FAIL() << "expected RecordingError with '" << needle << "'";
  } catch (const RecordingError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Recording, RoundTripsFramesByteForByte) {
  const auto path = write_three("ok.aitwrec");
  RecordingReader r(path.string());
  EXPECT_EQ(r.header().fps(), 12);
  EXPECT_EQ(r.header().source(), "unit test");
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto f = r.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->SerializeAsString(), frame(i, 100 + i).SerializeAsString());
  }
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.frames_read(), 3u);
}

TEST(Recording, RejectsFilesThatAreNotRecordings) {
  const auto path = temp_file("junk.aitwrec");
  std::ofstream(path) << "JFIF not a recording";
  expect_error(path, "bad magic");
  expect_error(temp_file("missing.aitwrec"), "cannot open");
}

TEST(Recording, TruncatedRecordNamesItsIndex) {
  const auto path = write_three("cut.aitwrec");
  fs::resize_file(path, fs::file_size(path) - 50);  // into the last record's payload
  expect_error(path, "record 2");
  fs::resize_file(path, fs::file_size(path) - 100 - 2);  // into a length prefix
  expect_error(path, "truncated");
}

TEST(Recording, OversizedLengthIsRejectedBeforeAllocating) {
  const auto path = write_three("huge.aitwrec");
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary | std::ios::ate);
  const unsigned char len[4] = {0xff, 0xff, 0xff, 0x7f};
  f.write(reinterpret_cast<const char*>(len), 4);  // a 4th record claiming 2 GiB
  f.close();
  expect_error(path, "exceeds");
}

TEST(Recording, CorruptPayloadIsNotAFrame) {
  const auto path = write_three("corrupt.aitwrec");
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary | std::ios::ate);
  const unsigned char rec[7] = {3, 0, 0, 0, 0xff, 0xff, 0xff};  // 3 bytes of invalid protobuf
  f.write(reinterpret_cast<const char*>(rec), 7);
  f.close();
  expect_error(path, "not a Frame");
}

TEST(Recording, ReadsFromAStreamToo) {
  const std::string bytes = [] {
    std::ifstream f(write_three("stream.aitwrec"), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }();
  std::istringstream in(bytes);
  RecordingReader r(in, "in-memory");
  EXPECT_EQ(r.header().source(), "unit test");
  int n = 0;
  while (r.next()) ++n;
  EXPECT_EQ(n, 3);
  std::istringstream junk("AITWREC0");
  try {
    RecordingReader bad(junk, "junk bytes");
    FAIL() << "expected RecordingError";
  } catch (const RecordingError& e) {
    EXPECT_NE(std::string(e.what()).find("recording 'junk bytes': not an aitw recording"), std::string::npos);
  }
}

// A length just under the 64 MiB limit in a short file is a truncation, found with only the bytes the
// file holds in memory (the reader used to allocate the whole declared length first).
TEST(Recording, LargeLengthInAShortFileIsATruncation) {
  const auto path = write_three("short.aitwrec");
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary | std::ios::ate);
  const unsigned char len[4] = {0x00, 0x00, 0x00, 0x04};  // a 4th record claiming 64 MiB
  f.write(reinterpret_cast<const char*>(len), 4);
  f.write("abc", 3);
  f.close();
  expect_error(path, "truncated (3 of 67108864 bytes)");
}

}  // namespace aitw::datasets
