#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "aitw/base/backoff.hpp"
#include "aitw/base/read_file.hpp"
#include "aitw/base/sha256.hpp"

namespace aitw {
namespace {

TEST(Sha256, MatchesTheStandardVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(to_hex(std::string("\x00\x7f\xff", 3)), "007fff");
}

TEST(ReadFileBytes, WholeFilesEmptyOnesSpecialOnesAndErrors) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("aitw_read_file_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // Every byte value, and more than one read buffer of the fallback path (64 KiB).
  std::string bytes;
  for (int i = 0; i < 200000; ++i) bytes.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  std::ofstream(dir / "a.bin", std::ios::binary) << bytes;
  std::ofstream(dir / "empty.bin", std::ios::binary).flush();
  EXPECT_EQ(read_file_bytes(dir / "a.bin"), bytes);
  EXPECT_EQ(read_file_bytes(dir / "empty.bin"), std::string());
  EXPECT_EQ(read_file_bytes(dir / "missing.bin"), std::nullopt);
  EXPECT_THROW(read_file_bytes(dir), std::runtime_error);  // a directory opens, and its read fails
  // /proc files say they are empty and are not: read to their end.
  const auto status = read_file_bytes("/proc/self/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->find("Name:"), std::string::npos);
  EXPECT_NE(status->find("VmRSS:"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Backoff, DoublesWithJitterInTheUpperHalfUpToTheCap) {
  using std::chrono::milliseconds;
  Backoff b(milliseconds(100), milliseconds(1000));
  const long bounds[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (long bound : bounds) {
    for (int i = 0; i < 1; ++i) {
      const auto d = b.next().count();
      EXPECT_GE(d, bound / 2) << bound;
      EXPECT_LE(d, bound) << bound;
    }
  }
  b.reset();
  EXPECT_EQ(b.bound(), milliseconds(100));
  // Jitter: many draws at one bound are not all equal.
  long lo = 1 << 30, hi = 0;
  for (int i = 0; i < 200; ++i) {
    Backoff c(milliseconds(1000), milliseconds(1000));
    const long d = c.next().count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, hi);
  EXPECT_GE(lo, 500);
  EXPECT_LE(hi, 1000);
  Backoff zero(milliseconds(0), milliseconds(0));
  EXPECT_EQ(zero.next().count(), 0);
}

}  // namespace
}  // namespace aitw
