#pragma once
// Recordings (.aitwrec): the Frame messages a client sent, with their capture timestamps, so that a
// recorded session replays byte-for-byte. Layout: "AITWREC1", uint32LE n + RecordingHeader, then
// uint32LE n + Frame per record (proto/aitw.proto).
#include <cstdint>
#include <fstream>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>

#include "aitw.pb.h"

namespace aitw::datasets {

class RecordingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr char kRecordingMagic[8] = {'A', 'I', 'T', 'W', 'R', 'E', 'C', '1'};
inline constexpr std::uint32_t kMaxHeaderBytes = 1u << 20;
inline constexpr std::uint32_t kMaxFrameBytes = 64u << 20;  // a 4K RGB frame is 25 MB

class RecordingWriter {
 public:
  RecordingWriter(const std::string& path, const v1::RecordingHeader& header);  // throws RecordingError
  void write(const v1::Frame& frame);
  void close();  // flushes; throws RecordingError if anything failed to reach the disk
  std::uint64_t frames_written() const { return frames_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::uint64_t frames_ = 0;
};

class RecordingReader {
 public:
  explicit RecordingReader(const std::string& path);  // throws RecordingError naming the file and the cause
  // Reads from a stream the caller keeps alive (e.g. in memory); `label` names it in errors.
  RecordingReader(std::istream& in, const std::string& label);
  RecordingReader(const RecordingReader&) = delete;  // in_ may refer to file_
  RecordingReader& operator=(const RecordingReader&) = delete;
  const v1::RecordingHeader& header() const { return header_; }
  // Next frame, or nullopt at the clean end. A truncated or corrupt record throws RecordingError naming
  // the record index and byte offset.
  std::optional<v1::Frame> next();
  std::uint64_t frames_read() const { return frames_; }

 private:
  void read_header();

  std::string path_;
  std::ifstream file_;
  std::istream& in_;
  v1::RecordingHeader header_;
  std::uint64_t frames_ = 0;
  std::string buffer_;
};

}  // namespace aitw::datasets
