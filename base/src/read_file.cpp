#include "aitw/base/read_file.hpp"

#include <fstream>
#include <stdexcept>
#include <system_error>

namespace aitw {

std::optional<std::string> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  // One read into a string of the file's size. Streamed through an ostringstream (as the model loader and the
  // registry did), a 12 MB model was copied at every doubling of the stream's buffer and once more out of it;
  // under ThreadSanitizer each copy also wrote its shadow (15 % of a server test's samples there).
  std::string bytes;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > 0) {
      bytes.resize(size);
      f.read(bytes.data(), static_cast<std::streamsize>(size));
      bytes.resize(static_cast<std::size_t>(f.gcount()));
    }
  }
  // Whatever the size did not cover: a special file, or one that grew since.
  if (f) {
    char buf[1 << 16];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) bytes.append(buf, static_cast<std::size_t>(f.gcount()));
  }
  if (f.bad()) throw std::runtime_error("read error");
  return bytes;
}

}  // namespace aitw
