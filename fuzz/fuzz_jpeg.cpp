// The pipeline's frame decode (pipeline::decode_frame): the bytes of a Frame and its declared format and
// size -> an image view, or a clean FrameDecodeError. JPEG sizes are read from the header and checked
// (declared size, pixel limit) before cv::imdecode allocates anything.
//
// Input: byte 0 = format (bits 0-1: 0/1 JPEG, 2 RGB8, 3 BGR8; bit 2: declared width negative, as a uint32
// above INT_MAX becomes), bytes 1-2 / 3-4 = declared width / height (uint16 LE, 0 = not declared), then
// the pixel bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "aitw/pipeline/pipeline.hpp"
#include "fuzz_common.hpp"

using aitw::pipeline::PixelFormat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  aitw::pipeline::FrameIn f;
  static constexpr PixelFormat kFormats[4] = {PixelFormat::JPEG, PixelFormat::JPEG, PixelFormat::RGB8,
                                              PixelFormat::BGR8};
  f.format = kFormats[data[0] & 3];
  f.width = data[1] | data[2] << 8;
  f.height = data[3] | data[4] << 8;
  if (data[0] & 4) f.width = -f.width;
  f.data.assign(reinterpret_cast<const char*>(data + 5), size - 5);

  const auto dims = aitw::pipeline::jpeg_dimensions(f.data);
  if (dims)
    AITW_FUZZ_CHECK(dims->first >= 0 && dims->first <= 65535 && dims->second >= 0 && dims->second <= 65535);

  cv::Mat scratch;
  aitw::kernel::ImageView view;
  const auto err = aitw::pipeline::decode_frame(f, scratch, view, aitw::fuzz::kFuzzMaxFramePixels);
  if (err) {
    AITW_FUZZ_CHECK(err->cause == "decode_failed" || err->cause == "size_mismatch" ||
                    err->cause == "too_large");
    AITW_FUZZ_CHECK(!err->message.empty());
    if (err->cause == "too_large") AITW_FUZZ_CHECK(f.format == PixelFormat::JPEG);
    return 0;
  }
  AITW_FUZZ_CHECK(view.data != nullptr && view.width > 0 && view.height > 0);
  AITW_FUZZ_CHECK(view.row_stride >= 3 * static_cast<std::ptrdiff_t>(view.width));
  AITW_FUZZ_CHECK(!f.width || view.width == f.width);
  AITW_FUZZ_CHECK(!f.height || view.height == f.height);
  AITW_FUZZ_CHECK(static_cast<long long>(view.width) * view.height <= aitw::fuzz::kFuzzMaxFramePixels ||
                  f.format != PixelFormat::JPEG);
  if (f.format == PixelFormat::JPEG) {
    AITW_FUZZ_CHECK(dims.has_value());
    AITW_FUZZ_CHECK((view.width == dims->first && view.height == dims->second) ||
                    (view.width == dims->second && view.height == dims->first));
  } else {
    AITW_FUZZ_CHECK(static_cast<std::size_t>(view.width) * view.height * 3 == f.data.size());
  }
  // Every pixel the pipeline's preprocessing would read (ASan checks the bounds).
  unsigned sum = 0;
  for (int y = 0; y < view.height; ++y) {
    const std::uint8_t* row = view.data + y * view.row_stride;
    for (int x = 0; x < 3 * view.width; ++x) sum += row[x];
  }
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
