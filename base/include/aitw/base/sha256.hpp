#pragma once
// SHA-256 (OpenSSL's EVP): model identity, the registry's content addresses, token comparison.
#include <array>
#include <string>
#include <string_view>

namespace aitw {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest sha256(std::string_view bytes);
// Lower-case hex of sha256(bytes): 64 characters.
std::string sha256_hex(std::string_view bytes);
// Lower-case hex of any bytes.
std::string to_hex(std::string_view bytes);

}  // namespace aitw
