#include "aitw/datasets/recording.hpp"

#include <cstring>

namespace aitw::datasets {
namespace {

void put_u32(std::ostream& out, std::uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                              static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 24)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

// Reads a uint32LE; false at a clean end of file (no byte read), throws on a partial one.
bool get_u32(std::istream& in, std::uint32_t& v, const std::string& where) {
  unsigned char b[4];
  in.read(reinterpret_cast<char*>(b), 4);
  if (in.gcount() == 0) return false;
  if (in.gcount() != 4) throw RecordingError(where + ": truncated length prefix");
  v = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  return true;
}

}  // namespace

RecordingWriter::RecordingWriter(const std::string& path, const v1::RecordingHeader& header)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) throw RecordingError("recording '" + path + "': cannot create file");
  const std::string h = header.SerializeAsString();
  out_.write(kRecordingMagic, sizeof kRecordingMagic);
  put_u32(out_, static_cast<std::uint32_t>(h.size()));
  out_.write(h.data(), static_cast<std::streamsize>(h.size()));
}

void RecordingWriter::write(const v1::Frame& frame) {
  const std::string bytes = frame.SerializeAsString();
  if (bytes.size() > kMaxFrameBytes)
    throw RecordingError("recording '" + path_ + "': frame of " + std::to_string(bytes.size()) +
                         " bytes exceeds the " + std::to_string(kMaxFrameBytes) + "-byte limit");
  put_u32(out_, static_cast<std::uint32_t>(bytes.size()));
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out_) throw RecordingError("recording '" + path_ + "': write failed (disk full?)");
  ++frames_;
}

void RecordingWriter::close() {
  out_.flush();
  if (!out_) throw RecordingError("recording '" + path_ + "': write failed (disk full?)");
  out_.close();
}

RecordingReader::RecordingReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  const std::string what = "recording '" + path + "'";
  if (!in_) throw RecordingError(what + ": cannot open file");
  char magic[sizeof kRecordingMagic];
  in_.read(magic, sizeof magic);
  if (in_.gcount() != sizeof magic || std::memcmp(magic, kRecordingMagic, sizeof magic) != 0)
    throw RecordingError(what + ": not an aitw recording (bad magic; expected AITWREC1)");
  std::uint32_t n = 0;
  if (!get_u32(in_, n, what) || n > kMaxHeaderBytes)
    throw RecordingError(what + ": missing or oversized header (" + std::to_string(n) + " bytes)");
  buffer_.resize(n);
  in_.read(buffer_.data(), n);
  if (static_cast<std::uint32_t>(in_.gcount()) != n || !header_.ParseFromString(buffer_))
    throw RecordingError(what + ": corrupt header");
}

std::optional<v1::Frame> RecordingReader::next() {
  const std::string where = "recording '" + path_ + "', record " + std::to_string(frames_) + " at byte " +
                            std::to_string(static_cast<long long>(in_.tellg()));
  std::uint32_t n = 0;
  if (!get_u32(in_, n, where)) return std::nullopt;
  if (n > kMaxFrameBytes)
    throw RecordingError(where + ": length " + std::to_string(n) + " exceeds the " +
                         std::to_string(kMaxFrameBytes) + "-byte limit (corrupt file?)");
  buffer_.resize(n);
  in_.read(buffer_.data(), n);
  if (static_cast<std::uint32_t>(in_.gcount()) != n)
    throw RecordingError(where + ": truncated (" + std::to_string(in_.gcount()) + " of " + std::to_string(n) +
                         " bytes)");
  v1::Frame f;
  if (!f.ParseFromString(buffer_)) throw RecordingError(where + ": not a Frame message");
  ++frames_;
  return f;
}

}  // namespace aitw::datasets
