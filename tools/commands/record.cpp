// aitw record: a recording (.aitwrec) from images or a video (jobs::run_record).
#include <iostream>
#include <memory>

#include "aitw/jobs/flag_values.hpp"
#include "aitw/jobs/record.hpp"
#include "commands.hpp"

namespace aitw::tools {
Command add_record(CLI::App& app) {
  auto rec = std::make_shared<jobs::RecordOptions>();
  auto* record = app.add_subcommand(
      "record", "Build a recording (.aitwrec) from a directory of images, a list of images or a video");
  record->add_option("--from", rec->from, "DIR, IMAGE[,IMAGE...] or VIDEO")->required();
  record
      ->add_option_function<std::string>(
          "--size",
          [rec](const std::string& s) {
            const auto wh = jobs::parse_dimensions(s, "WxH");
            rec->width = wh->first;
            rec->height = wh->second;
          },
          "frame size WxH (images are scaled to cover it and centre-cropped)")
      ->default_str("640x480")
      ->check(dimensions("WxH"));
  record->add_option("--fps", rec->fps, "frame rate of the timestamps")
      ->capture_default_str()
      ->check(above(0));
  record->add_option("--duration", rec->duration, "seconds (0 = every source frame once; images loop)")
      ->capture_default_str();
  record->add_flag("--pan", rec->pan, "a moving window across each image, like a camera pan");
  record->add_option("--format", rec->format, "frame format: jpeg, bgr, rgb")
      ->capture_default_str()
      ->check(CLI::IsMember({"jpeg", "bgr", "rgb"}));
  record->add_option("--quality", rec->jpeg_quality, "JPEG quality")->capture_default_str();
  record->add_option("--out", rec->out, "output file (.aitwrec)")->required();
  return {record, [rec] { return jobs::run_record(*rec, std::cerr); }};
}

}  // namespace aitw::tools
