#pragma once
// A whole file's bytes, read straight into a string of the file's size.
#include <filesystem>
#include <optional>
#include <string>

namespace aitw {

// The bytes of the file at `path`, or std::nullopt if it cannot be opened. Throws std::runtime_error when a
// read fails part-way (a directory, an I/O error). A file that grows while it is read is read to its end, one
// that shrinks gives what is left; special files (no size) are read to their end too.
std::optional<std::string> read_file_bytes(const std::filesystem::path& path);

}  // namespace aitw
