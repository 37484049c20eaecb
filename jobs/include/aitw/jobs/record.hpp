#pragma once
// `aitw record`: builds a recording from a directory of images, a list of images, or a video file. The
// recording format itself (reader, writer) is aitw/datasets/recording.hpp.
#include <iosfwd>
#include <string>

namespace aitw::jobs {

struct RecordOptions {
  std::string from;  // a directory of images, IMAGE[,IMAGE...], or a video file (OpenCV videoio)
  int width = 640, height = 480;
  double fps = 12;
  double duration = 0;          // seconds; 0 = each source frame once
  bool pan = false;             // a moving window across each image (a "camera pan") instead of whole frames
  std::string format = "jpeg";  // jpeg, bgr, rgb
  int jpeg_quality = 90;
  std::string out;
};

// Returns 0, or 2 with a one-line error on `err` (missing source, unreadable video, bad options).
int run_record(const RecordOptions& options, std::ostream& err);

}  // namespace aitw::jobs
