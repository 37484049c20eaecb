#include "protocol.hpp"

#include <algorithm>
#include <vector>

#include "aitw/kernel/conv_layer.hpp"

namespace aitw::net {

v1::Envelope error_msg(std::uint32_t code, const std::string& message, bool fatal) {
  v1::Envelope e;
  auto* err = e.mutable_error();
  err->set_code(code);
  err->set_message(message);
  err->set_fatal(fatal);
  return e;
}

v1::Envelope ready_msg() {
  v1::Envelope e;
  e.mutable_ready();
  return e;
}

v1::Envelope end_msg(const std::string& reason) {
  v1::Envelope e;
  e.mutable_end()->set_reason(reason);
  return e;
}

v1::Envelope heartbeat_msg(std::int64_t ts_mono_ns) {
  v1::Envelope e;
  e.mutable_heartbeat()->set_ts_mono_ns(ts_mono_ns);
  return e;
}

v1::Envelope to_result(const pipeline::FrameResult& r, std::int64_t ts_mono_ns) {
  v1::Envelope e;
  auto* res = e.mutable_result();
  res->set_frame_id(r.frame_id);
  res->set_ts_mono_ns(ts_mono_ns);
  for (const auto& d : r.detections) {
    auto* o = res->add_detections();
    o->set_class_id(static_cast<std::uint32_t>(d.class_id));
    o->set_score(d.score);
    o->set_x1(d.x1);
    o->set_y1(d.y1);
    o->set_x2(d.x2);
    o->set_y2(d.y2);
  }
  auto* t = res->mutable_times();
  t->set_decode_ms(static_cast<float>(r.ms.decode));
  t->set_preprocess_ms(static_cast<float>(r.ms.preprocess));
  t->set_queue_ms(static_cast<float>(r.ms.queue));
  t->set_infer_ms(static_cast<float>(r.ms.infer));
  t->set_postprocess_ms(static_cast<float>(r.ms.postprocess));
  return e;
}

v1::Envelope make_init_ok(const pipeline::Detector& det, const v1::Init& init,
                          std::uint32_t max_frame_bytes) {
  v1::Envelope e;
  auto* ok = e.mutable_init_ok();
  ok->set_model_id(det.model().sha256());
  const auto in = init.width() && init.height()
                      ? det.input_size_for(static_cast<int>(init.width()), static_cast<int>(init.height()))
                      : pipeline::InputSize{det.config().imgsz, det.config().imgsz};
  ok->set_input_height(static_cast<std::uint32_t>(in.height));
  ok->set_input_width(static_cast<std::uint32_t>(in.width));
  for (const auto& n : det.class_names()) ok->add_class_names(n);
  ok->set_max_frame_bytes(max_frame_bytes);
  ok->add_providers(kProvider);
  // What runs the convolutions: "aitw avx512 kernels, bf16", "aitw avx2 kernels, fp32", "OpenCV's: ...".
  ok->add_providers(kernel::convolution_description(det.config().adapt.precision));
  ok->set_preproc(kPreproc);
  return e;
}

pipeline::PostOptions to_post_options(const pipeline::Detector& det, const v1::Thresholds& th) {
  const std::vector<int> classes(th.classes().begin(), th.classes().end());
  return det.post_options(th.conf(), th.iou(),
                          static_cast<int>(std::min<std::uint32_t>(th.max_det(), 100000)), classes);
}

pipeline::PixelFormat to_pixel_format(v1::PixelFormat f) {
  return f == v1::RGB8   ? pipeline::PixelFormat::RGB8
         : f == v1::BGR8 ? pipeline::PixelFormat::BGR8
                         : pipeline::PixelFormat::JPEG;
}

}  // namespace aitw::net
