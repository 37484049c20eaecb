#include "aitw/jobs/record.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <ostream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "aitw/datasets/recording.hpp"

namespace aitw::jobs {
namespace fs = std::filesystem;
using datasets::RecordingError;
using datasets::RecordingWriter;
namespace {

bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".webp" || e == ".tif" ||
         e == ".tiff";
}

// Scales `img` to cover W x H and crops the centre.
cv::Mat cover(const cv::Mat& img, int W, int H) {
  const double s = std::max(static_cast<double>(W) / img.cols, static_cast<double>(H) / img.rows);
  cv::Mat scaled;
  cv::resize(img, scaled,
             cv::Size(std::max(W, static_cast<int>(std::lround(img.cols * s))),
                      std::max(H, static_cast<int>(std::lround(img.rows * s)))),
             0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  return scaled(cv::Rect((scaled.cols - W) / 2, (scaled.rows - H) / 2, W, H)).clone();
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int run_record(const RecordOptions& o, std::ostream& err) {
  auto fail = [&](const std::string& what) {
    err << "aitw record: " << what << "\n";
    return 2;
  };
  if (o.width <= 0 || o.height <= 0) return fail("--size must be positive");
  if (o.fps <= 0) return fail("--fps must be positive");
  if (o.out.empty()) return fail("--out is required");
  v1::PixelFormat format;
  if (o.format == "jpeg")
    format = v1::JPEG;
  else if (o.format == "bgr")
    format = v1::BGR8;
  else if (o.format == "rgb")
    format = v1::RGB8;
  else
    return fail("--format must be jpeg, bgr or rgb");

  // Sources: image files (a directory or a list) or a video.
  std::vector<std::string> images;
  cv::VideoCapture video;
  std::error_code ec;
  if (fs::is_directory(o.from, ec)) {
    for (const auto& e : fs::directory_iterator(o.from, ec))
      if (e.is_regular_file() && is_image(e.path())) images.push_back(e.path().string());
    std::sort(images.begin(), images.end());
    if (images.empty()) return fail("no images in directory '" + o.from + "'");
  } else {
    const auto list = split_list(o.from);
    if (list.empty()) return fail("--from is required");
    if (list.size() > 1 || is_image(list[0])) {
      for (const auto& p : list) {
        if (!fs::is_regular_file(p, ec)) return fail("image '" + p + "' not found");
        images.push_back(p);
      }
    } else {
      if (!fs::is_regular_file(list[0], ec)) return fail("'" + list[0] + "' not found");
      if (o.pan) return fail("--pan needs images, not a video");
      if (!video.open(list[0])) return fail("cannot open video '" + list[0] + "' (unsupported format?)");
    }
  }

  v1::RecordingHeader header;
  header.set_version(1);
  header.set_width(o.width);
  header.set_height(o.height);
  header.set_fps(o.fps);
  header.set_format(format);
  header.set_source((o.pan ? "pan:" : "") + o.from);
  header.set_created_unix_s(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());

  try {
    RecordingWriter writer(o.out, header);
    std::uint64_t id = 0;
    auto emit = [&](const cv::Mat& bgr) {
      v1::Frame f;
      f.set_frame_id(id);
      f.set_ts_mono_ns(static_cast<std::int64_t>(std::llround(static_cast<double>(id) * 1e9 / o.fps)));
      f.set_width(o.width);
      f.set_height(o.height);
      f.set_format(format);
      if (format == v1::JPEG) {
        std::vector<std::uint8_t> buf;
        cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality});
        f.set_pixels(std::string(buf.begin(), buf.end()));
      } else {
        cv::Mat m = bgr;
        if (format == v1::RGB8) cv::cvtColor(bgr, m, cv::COLOR_BGR2RGB);
        f.set_pixels(std::string(reinterpret_cast<const char*>(m.data), m.total() * 3));
      }
      writer.write(f);
      ++id;
    };
    const std::uint64_t wanted =
        o.duration > 0 ? static_cast<std::uint64_t>(std::llround(o.duration * o.fps)) : 0;

    if (video.isOpened()) {
      cv::Mat frame;
      while ((wanted == 0 || id < wanted) && video.read(frame)) emit(cover(frame, o.width, o.height));
    } else if (o.pan) {
      // Each image gets an equal share of the frames; the window glides across it and back, so that
      // consecutive frames are similar, like video.
      const std::uint64_t total =
          wanted ? wanted : static_cast<std::uint64_t>(std::llround(10 * o.fps)) * images.size();
      for (std::size_t k = 0; k < images.size(); ++k) {
        const cv::Mat img = cv::imread(images[k]);
        if (img.empty()) return fail("cannot read image '" + images[k] + "'");
        const double s =
            1.6 * std::max(static_cast<double>(o.width) / img.cols, static_cast<double>(o.height) / img.rows);
        cv::Mat big;
        cv::resize(img, big, cv::Size(static_cast<int>(img.cols * s), static_cast<int>(img.rows * s)), 0, 0,
                   s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
        const std::uint64_t begin = total * k / images.size(), end = total * (k + 1) / images.size();
        for (std::uint64_t i = begin; i < end; ++i) {
          const double t = static_cast<double>(i - begin) / std::max<std::uint64_t>(1, end - begin - 1);
          const int x = static_cast<int>((big.cols - o.width) * (0.5 - 0.5 * std::cos(2 * M_PI * t)));
          const int y = static_cast<int>((big.rows - o.height) * (0.5 - 0.5 * std::cos(M_PI * t)));
          emit(big(cv::Rect(x, y, o.width, o.height)));
        }
      }
    } else {
      const std::uint64_t total = wanted ? wanted : images.size();
      for (std::uint64_t i = 0; i < total; ++i) {
        const std::string& p = images[i % images.size()];
        const cv::Mat img = cv::imread(p);
        if (img.empty()) return fail("cannot read image '" + p + "'");
        emit(cover(img, o.width, o.height));
      }
    }
    if (id == 0) return fail("no frames written (empty video?)");
    writer.close();
    err << "aitw record: " << id << " frames (" << o.width << "x" << o.height << " " << o.format << ", "
        << o.fps << " fps, " << static_cast<double>(id) / o.fps << " s) -> " << o.out << "\n";
  } catch (const RecordingError& e) {
    return fail(e.what());
  }
  return 0;
}

}  // namespace aitw::jobs
