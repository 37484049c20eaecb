#include "aitw/datasets/recording.hpp"

#include <algorithm>
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

// Reads up to n bytes into `buf`, growing it only as bytes arrive: a corrupt length prefix in a short
// file costs no more memory than the file holds. Returns how many were read.
std::size_t read_exactly(std::istream& in, std::string& buf, std::uint32_t n) {
  constexpr std::size_t kChunk = 1 << 16;
  buf.clear();
  while (buf.size() < n) {
    const std::size_t old = buf.size(), want = std::min<std::size_t>(kChunk, n - old);
    buf.resize(old + want);
    in.read(buf.data() + old, static_cast<std::streamsize>(want));
    const auto got = static_cast<std::size_t>(in.gcount());
    buf.resize(old + got);
    if (got < want) break;
  }
  return buf.size();
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

RecordingReader::RecordingReader(const std::string& path)
    : path_(path), file_(path, std::ios::binary), in_(file_) {
  if (!file_) throw RecordingError("recording '" + path + "': cannot open file");
  read_header();
}

RecordingReader::RecordingReader(std::istream& in, const std::string& label) : path_(label), in_(in) {
  read_header();
}

void RecordingReader::read_header() {
  const std::string what = "recording '" + path_ + "'";
  char magic[sizeof kRecordingMagic];
  in_.read(magic, sizeof magic);
  if (in_.gcount() != sizeof magic || std::memcmp(magic, kRecordingMagic, sizeof magic) != 0)
    throw RecordingError(what + ": not an aitw recording (bad magic; expected AITWREC1)");
  std::uint32_t n = 0;
  if (!get_u32(in_, n, what) || n > kMaxHeaderBytes)
    throw RecordingError(what + ": missing or oversized header (" + std::to_string(n) + " bytes)");
  if (read_exactly(in_, buffer_, n) != n || !header_.ParseFromString(buffer_))
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
  if (const std::size_t got = read_exactly(in_, buffer_, n); got != n)
    throw RecordingError(where + ": truncated (" + std::to_string(got) + " of " + std::to_string(n) +
                         " bytes)");
  v1::Frame f;
  if (!f.ParseFromString(buffer_)) throw RecordingError(where + ": not a Frame message");
  ++frames_;
  return f;
}

}  // namespace aitw::datasets
