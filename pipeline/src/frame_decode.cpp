// The pipeline's first stage apart from the graph that runs it: a frame's bytes checked against its declared
// format and size, and viewed (raw) or decoded (JPEG) as an image.
#include <opencv2/imgcodecs.hpp>
#include <string>

#include "aitw/pipeline/pipeline.hpp"

namespace aitw::pipeline {

const char* to_string(PixelFormat f) {
  switch (f) {
    case PixelFormat::RGB8:
      return "RGB8";
    case PixelFormat::BGR8:
      return "BGR8";
    case PixelFormat::JPEG:
      return "JPEG";
  }
  return "?";
}

std::optional<std::pair<int, int>> jpeg_dimensions(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  // SOI and the first marker's 0xFF: OpenCV's JPEG signature. Without it cv::imdecode would try its other
  // decoders, and GDCM asserts (aborting the process) on bytes with "DICM" at offset 128.
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8 || p[2] != 0xFF) return std::nullopt;
  // Walks the markers the way libjpeg does: bytes before a marker are skipped, 0xFF may repeat (fill),
  // 0xFF00 is not a marker, and only the first SOFn counts (libjpeg refuses a second one).
  std::size_t i = 2;
  for (;;) {
    while (i < n && p[i] != 0xFF) ++i;
    while (i < n && p[i] == 0xFF) ++i;
    if (i >= n) return std::nullopt;
    const unsigned m = p[i++];
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
    if (m == 0xD9 || m == 0xDA) return std::nullopt;  // end of image, or scan data, before a frame header
    if (n - i < 2) return std::nullopt;
    const std::size_t len = static_cast<std::size_t>(p[i]) << 8 | p[i + 1];
    if (len < 2) return std::nullopt;
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {  // SOFn: precision, height, width
      if (len < 7 || n - i < 7) return std::nullopt;
      return std::pair<int, int>{p[i + 5] << 8 | p[i + 6], p[i + 3] << 8 | p[i + 4]};
    }
    if (n - i < len) return std::nullopt;
    i += len;
  }
}

std::optional<FrameDecodeError> decode_frame(const FrameIn& f, cv::Mat& scratch, kernel::ImageView& view,
                                             std::int64_t max_pixels) {
  auto fail = [](const char* cause, std::string what) {
    return std::optional<FrameDecodeError>(FrameDecodeError{cause, std::move(what)});
  };
  auto size_str = [](int w, int h) { return std::to_string(w) + "x" + std::to_string(h); };
  if (f.format == PixelFormat::JPEG) {
    const auto dims = jpeg_dimensions(f.data);
    if (!dims || dims->first == 0 || dims->second == 0)
      return fail("decode_failed", "JPEG frame does not decode (no JPEG frame header)");
    const auto [w, h] = *dims;
    // Decoding applies the EXIF orientation, which may swap width and height.
    auto fits = [&](int a, int b) { return (!f.width || f.width == a) && (!f.height || f.height == b); };
    if (!fits(w, h) && !fits(h, w))
      return fail("size_mismatch",
                  "JPEG frame is " + size_str(w, h) + ", declared " + size_str(f.width, f.height));
    if (static_cast<std::int64_t>(w) * h > max_pixels)
      return fail("too_large", "JPEG frame is " + size_str(w, h) + ", above the limit of " +
                                   std::to_string(max_pixels) + " pixels");
    try {
      cv::imdecode(cv::Mat(1, static_cast<int>(f.data.size()), CV_8U, const_cast<char*>(f.data.data())),
                   cv::IMREAD_COLOR, &scratch);
    } catch (const cv::Exception&) {
      scratch.release();
    }
    if (scratch.empty()) return fail("decode_failed", "JPEG frame does not decode");
    if ((f.width && f.width != scratch.cols) || (f.height && f.height != scratch.rows))
      return fail("size_mismatch", "JPEG frame is " + size_str(scratch.cols, scratch.rows) + ", declared " +
                                       size_str(f.width, f.height));
    view = {scratch.data, scratch.cols, scratch.rows, static_cast<std::ptrdiff_t>(scratch.step),
            kernel::PixelOrder::BGR};
    return std::nullopt;
  }
  const std::size_t expected =
      f.width > 0 && f.height > 0 ? static_cast<std::size_t>(f.width) * static_cast<std::size_t>(f.height) * 3
                                  : 0;
  if (expected == 0 || f.data.size() != expected)
    return fail("size_mismatch", std::string(to_string(f.format)) + " frame has " +
                                     std::to_string(f.data.size()) + " bytes, " +
                                     size_str(f.width, f.height) + "x3 needs " + std::to_string(expected));
  view = {reinterpret_cast<const std::uint8_t*>(f.data.data()), f.width, f.height,
          static_cast<std::ptrdiff_t>(f.width) * 3,
          f.format == PixelFormat::RGB8 ? kernel::PixelOrder::RGB : kernel::PixelOrder::BGR};
  return std::nullopt;
}

}  // namespace aitw::pipeline
