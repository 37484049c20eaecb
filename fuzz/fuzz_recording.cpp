// The .aitwrec reader (datasets/recording.hpp) on any bytes, from memory: the header, then every record
// until the clean end or a RecordingError. Records are capped at 64 MiB by the format; the reader must
// never allocate more than the bytes it was given justify (a corrupt length costs nothing).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "aitw/datasets/recording.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  aitw::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    aitw::datasets::RecordingReader reader(in, "fuzz.aitwrec");
    std::size_t frames = 0;
    while (auto f = reader.next()) {
      ++frames;
      AITW_FUZZ_CHECK(f->pixels().size() < size);
      AITW_FUZZ_CHECK(reader.frames_read() == frames);
    }
    AITW_FUZZ_CHECK(!reader.next());  // the clean end stays the end
  } catch (const aitw::datasets::RecordingError& e) {
    AITW_FUZZ_CHECK(std::string(e.what()).find("fuzz.aitwrec") != std::string::npos);
  }
  return 0;
}
