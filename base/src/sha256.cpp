#include "aitw/base/sha256.hpp"

#include <openssl/evp.h>

namespace aitw {

Sha256Digest sha256(std::string_view bytes) {
  Sha256Digest md{};
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md.data(), &len, EVP_sha256(), nullptr);
  return md;
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  const auto md = sha256(bytes);
  return to_hex({reinterpret_cast<const char*>(md.data()), md.size()});
}

}  // namespace aitw
