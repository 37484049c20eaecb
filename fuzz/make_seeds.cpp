// aitw_fuzz_seeds OUT SHARED: writes the seed corpora of the fuzz targets into OUT/<target>/ from valid
// messages and files, made with the project's own APIs (run by fuzz/make_seeds.sh; never committed):
//   fuzz_session    encoded Envelope sequences: handshakes, frames (JPEG/RGB8/BGR8), protocol errors
//   fuzz_onnx       small synthetic detectors (2 and 3 levels, attention, SiLU pairs, upsampling,
//                   metadata), the not-a-detector graph, truncations, and the head of the real yolo11n
//   fuzz_registry   manifests of a real `registry push` (yolo11n and a synthetic detector)
//   fuzz_recording  recordings written by RecordingWriter (JPEG and raw frames), and a truncated one
//   fuzz_jpeg       small JPEGs from SHARED/datasets/images (baseline, progressive, restart markers,
//                   grayscale, EXIF-rotated) and raw frames, each behind the target's 5-byte prefix
// The S3 XML seeds of fuzz_registry are hand-written in make_seeds.sh.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "aitw/base/log.hpp"
#include "aitw/base/sha256.hpp"
#include "aitw/datasets/recording.hpp"
#include "aitw/model/onnx_model.hpp"
#include "aitw/net/framing.hpp"
#include "aitw/registry/registry.hpp"
#include "fuzz_common.hpp"
#include "onnx.pb.h"

namespace {

namespace fs = std::filesystem;
namespace ox = aitw::onnx;
namespace v1 = aitw::v1;

fs::path g_out;
int g_count = 0;

void write_seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + (dir / name).string());
  ++g_count;
}

std::string read_file(const fs::path& p, std::size_t max = SIZE_MAX) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::string s(std::istreambuf_iterator<char>(f), {});
  if (s.size() > max) s.resize(max);
  return s;
}

// --- images --------------------------------------------------------------------------------------------

cv::Mat g_image;  // bus.jpg (or zidane.jpg), the source of every seed picture

cv::Mat small(int w, int h) {
  cv::Mat out;
  cv::resize(g_image, out, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  return out;
}

std::string jpeg(const cv::Mat& img, std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, 75}) {
  std::vector<std::uint8_t> buf;
  if (!cv::imencode(".jpg", img, buf, params)) throw std::runtime_error("imencode failed");
  return std::string(buf.begin(), buf.end());
}

// An APP1 Exif segment with one IFD0 entry, Orientation = `orientation`, inserted after SOI.
std::string with_exif_orientation(const std::string& jpg, int orientation) {
  std::string tiff = std::string("II*\0", 4) + std::string("\x08\0\0\0", 4);  // little endian, IFD0 at 8
  tiff += std::string("\x01\0", 2);                                           // one entry
  tiff += std::string("\x12\x01\x03\0\x01\0\0\0", 8);                         // 0x0112 SHORT x1
  tiff += static_cast<char>(orientation);
  tiff += std::string("\0\0\0", 3);
  tiff += std::string("\0\0\0\0", 4);  // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const std::size_t len = payload.size() + 2;
  std::string seg = "\xFF\xE1";
  seg += static_cast<char>(len >> 8);
  seg += static_cast<char>(len & 0xFF);
  seg += payload;
  return jpg.substr(0, 2) + seg + jpg.substr(2);
}

std::string raw(const cv::Mat& bgr, bool rgb) {
  cv::Mat m;
  if (rgb)
    cv::cvtColor(bgr, m, cv::COLOR_BGR2RGB);
  else
    m = bgr.clone();
  return std::string(reinterpret_cast<const char*>(m.data), m.total() * m.elemSize());
}

// --- fuzz_jpeg -------------------------------------------------------------------------------------------

// The target's prefix: format byte (0 JPEG, 2 RGB8, 3 BGR8), declared width and height (uint16 LE).
std::string jpeg_input(int format, int w, int h, const std::string& bytes) {
  std::string s;
  s += static_cast<char>(format);
  s += static_cast<char>(w & 0xFF);
  s += static_cast<char>(w >> 8);
  s += static_cast<char>(h & 0xFF);
  s += static_cast<char>(h >> 8);
  return s + bytes;
}

void jpeg_seeds() {
  const cv::Mat a = small(32, 24), b = small(16, 16), c = small(8, 6);
  cv::Mat gray;
  cv::cvtColor(a, gray, cv::COLOR_BGR2GRAY);
  write_seed("fuzz_jpeg", "baseline_32x24", jpeg_input(0, 32, 24, jpeg(a)));
  write_seed("fuzz_jpeg", "undeclared_32x24", jpeg_input(0, 0, 0, jpeg(a)));
  write_seed("fuzz_jpeg", "mismatch_declared", jpeg_input(0, 31, 24, jpeg(a)));
  write_seed("fuzz_jpeg", "progressive_16x16",
             jpeg_input(0, 16, 16, jpeg(b, {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 50})));
  write_seed("fuzz_jpeg", "optimized_rst_32x24",
             jpeg_input(0, 32, 24,
                        jpeg(a, {cv::IMWRITE_JPEG_OPTIMIZE, 1, cv::IMWRITE_JPEG_RST_INTERVAL, 1,
                                 cv::IMWRITE_JPEG_QUALITY, 30})));
  write_seed(
      "fuzz_jpeg", "chroma_q_8x6",
      jpeg_input(0, 8, 6, jpeg(c, {cv::IMWRITE_JPEG_CHROMA_QUALITY, 10, cv::IMWRITE_JPEG_QUALITY, 90})));
  write_seed("fuzz_jpeg", "gray_32x24", jpeg_input(0, 32, 24, jpeg(gray)));
  write_seed("fuzz_jpeg", "exif_rotated_32x24", jpeg_input(0, 24, 32, with_exif_orientation(jpeg(a), 6)));
  write_seed("fuzz_jpeg", "exif_mirrored_16x16", jpeg_input(0, 16, 16, with_exif_orientation(jpeg(b), 2)));
  write_seed("fuzz_jpeg", "truncated_32x24", jpeg_input(0, 32, 24, jpeg(a).substr(0, 300)));
  write_seed("fuzz_jpeg", "rgb8_8x6", jpeg_input(2, 8, 6, raw(c, true)));
  write_seed("fuzz_jpeg", "bgr8_8x6", jpeg_input(3, 8, 6, raw(c, false)));
  write_seed("fuzz_jpeg", "rgb8_short", jpeg_input(2, 8, 6, raw(c, true).substr(0, 100)));
}

// --- fuzz_session ----------------------------------------------------------------------------------------

v1::Envelope init_msg(const std::string& model, v1::PixelFormat format, int w, int h,
                      const std::string& token = "") {
  v1::Envelope e;
  auto* i = e.mutable_init();
  i->set_model(model);
  i->set_width(w);
  i->set_height(h);
  i->set_format(format);
  i->set_client_id("seed");
  if (!token.empty()) i->set_auth_token(token);
  i->mutable_thresholds()->set_conf(0.3f);
  i->mutable_thresholds()->set_iou(0.5f);
  i->mutable_thresholds()->set_max_det(10);
  i->mutable_thresholds()->add_classes(0);
  return e;
}

v1::Envelope frame_msg(std::uint64_t id, v1::PixelFormat format, int w, int h, const std::string& pixels) {
  v1::Envelope e;
  auto* f = e.mutable_frame();
  f->set_frame_id(id);
  f->set_ts_mono_ns(1000 + static_cast<std::int64_t>(id));
  f->set_width(w);
  f->set_height(h);
  f->set_format(format);
  f->set_pixels(pixels);
  return e;
}

v1::Envelope heartbeat() {
  v1::Envelope e;
  e.mutable_heartbeat()->set_ts_mono_ns(42);
  return e;
}

v1::Envelope end_msg() {
  v1::Envelope e;
  e.mutable_end()->set_reason("done");
  return e;
}

std::string wire(std::initializer_list<v1::Envelope> msgs) {
  std::string s;
  for (const auto& m : msgs) s += aitw::net::encode(m);
  return s;
}

// control: bit 0 small max, bits 1-3 chunking (7 = all at once), bit 4 auth token, bits 5-7 repeat.
void session_seed(const std::string& name, std::uint8_t control, const std::string& bytes) {
  write_seed("fuzz_session", name, std::string(1, static_cast<char>(control)) + bytes);
}

void session_seeds() {
  const cv::Mat c = small(8, 6);
  const std::string jpg = jpeg(small(16, 12)), rgb = raw(c, true), bgr = raw(c, false);
  const std::uint8_t all = 7 << 1, bytewise = 0, small_max = 1;
  const std::string handshake =
      wire({init_msg("yolo11n", v1::JPEG, 16, 12), frame_msg(2, v1::JPEG, 16, 12, jpg), heartbeat(),
            frame_msg(4, v1::JPEG, 0, 0, jpg), end_msg()});
  session_seed("jpeg_session", all, handshake);
  session_seed("jpeg_session_bytewise", bytewise, handshake);
  session_seed("jpeg_session_chunk7", 3 << 1, handshake);
  session_seed("rgb8_session", 4 << 1,
               wire({init_msg("yolov8n@3", v1::RGB8, 8, 6), frame_msg(2, v1::RGB8, 8, 6, rgb),
                     frame_msg(4, v1::PIXEL_FORMAT_UNSPECIFIED, 0, 0, rgb), end_msg()}));
  session_seed("bgr8_bad_size", all,
               wire({init_msg("m", v1::BGR8, 8, 6), frame_msg(2, v1::BGR8, 8, 6, bgr.substr(10)),
                     frame_msg(4, v1::BGR8, 8, 6, bgr)}));
  // Odd frame ids stay in flight over the next message: a second Frame is a window violation.
  session_seed("window_violation", all,
               wire({init_msg("yolo11n", v1::JPEG, 16, 12), frame_msg(1, v1::JPEG, 16, 12, jpg),
                     frame_msg(3, v1::JPEG, 16, 12, jpg)}));
  session_seed("init_while_in_flight", all,
               wire({init_msg("yolo11n", v1::JPEG, 16, 12), frame_msg(1, v1::JPEG, 16, 12, jpg),
                     init_msg("yolov8n", v1::JPEG, 16, 12), heartbeat()}));
  session_seed("format_mismatch", all,
               wire({init_msg("yolo11n", v1::JPEG, 16, 12), frame_msg(2, v1::RGB8, 8, 6, rgb),
                     frame_msg(4, v1::JPEG, 17, 12, jpg)}));
  session_seed("frame_before_init", all, wire({frame_msg(2, v1::JPEG, 16, 12, jpg), heartbeat()}));
  {
    v1::Envelope ok, ready, result, error;
    ok.mutable_init_ok()->set_model_id("abc");
    ready.mutable_ready();
    auto* r = result.mutable_result();
    r->set_frame_id(1);
    auto* d = r->add_detections();
    d->set_class_id(3);
    d->set_score(0.5f);
    r->mutable_times()->set_infer_ms(1.5f);
    error.mutable_error()->set_code(2);
    error.mutable_error()->set_message("x");
    session_seed("server_messages_from_client", all, wire({ok, ready, result, error}));
  }
  session_seed("path_model_refused", all,
               wire({init_msg("../../etc/passwd", v1::JPEG, 16, 12), init_msg("x.onnx", v1::JPEG, 16, 12),
                     init_msg("", v1::JPEG, 0, 0)}));
  session_seed(
      "auth_ok", all | 0x10,
      wire({init_msg("yolo11n", v1::JPEG, 16, 12, "fuzz-token"), frame_msg(2, v1::JPEG, 16, 12, jpg)}));
  session_seed("auth_wrong", all | 0x10, wire({init_msg("yolo11n", v1::JPEG, 16, 12, "wrong"), heartbeat()}));
  {
    std::string w = wire({heartbeat()});
    w += std::string("\x05\0\0\0garbage", 11);  // a complete message that is not an Envelope
    w += std::string("\0\0\0\0", 4);            // an empty Envelope (no message set)
    w += wire({heartbeat()});
    session_seed("malformed_then_heartbeat", all, w);
  }
  session_seed("oversize_prefix", all | small_max,
               wire({heartbeat()}) + std::string("\x00\x10\x00\x00", 4) + wire({heartbeat()}));
  session_seed("partial_message", all, wire({heartbeat()}) + wire({heartbeat()}).substr(0, 5));
  session_seed("repeat_heartbeats", all | 0xE0, wire({heartbeat(), heartbeat()}));
}

// --- fuzz_onnx -------------------------------------------------------------------------------------------

struct GraphBuilder {
  ox::ModelProto model;
  ox::GraphProto& g = *model.mutable_graph();
  std::mt19937 rng{7};

  GraphBuilder() {
    model.set_ir_version(7);
    model.set_producer_name("aitw_fuzz_seeds");
    model.add_opset_import()->set_version(12);
  }
  void io(ox::ValueInfoProto* v, const std::string& name, std::vector<std::int64_t> dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(ox::TensorProto::FLOAT);
    for (auto d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  ox::NodeProto* node(const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = g.add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  void ints(ox::NodeProto* n, const std::string& name, std::vector<std::int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(ox::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  void int1(ox::NodeProto* n, const std::string& name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(ox::AttributeProto::INT);
    a->set_i(v);
  }
  // Raw-data float weights for odd sizes, float_data otherwise (both encodings appear in exports).
  void conv(const std::string& in, const std::string& out, int cin, int cout, int stride) {
    std::normal_distribution<float> d(0.f, 0.3f);
    auto* w = g.add_initializer();
    w->set_name(out + ".weight");
    w->set_data_type(ox::TensorProto::FLOAT);
    for (int v : {cout, cin, 1, 1}) w->add_dims(v);
    std::vector<float> values(static_cast<std::size_t>(cout * cin));
    for (auto& v : values) v = d(rng);
    if (cout % 2)
      w->set_raw_data(
          std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    else
      for (float v : values) w->add_float_data(v);
    auto* n = node("Conv", {in, w->name()}, out);
    ints(n, "strides", {stride, stride});
    ints(n, "kernel_shape", {1, 1});
  }
  void silu(const std::string& x, const std::string& out) {
    node("Sigmoid", {x}, x + "_sig");
    node("Mul", {x, x + "_sig"}, out);
  }
  std::string int64s(const std::string& name, std::vector<std::int64_t> v) {
    auto* t = g.add_initializer();
    t->set_name(name);
    t->set_data_type(ox::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(v.size()));
    for (auto x : v) t->add_int64_data(x);
    return name;
  }
  std::string floats(const std::string& name, std::vector<float> v, bool scalar = false) {
    auto* t = g.add_initializer();
    t->set_name(name);
    t->set_data_type(ox::TensorProto::FLOAT);
    if (!scalar) t->add_dims(static_cast<std::int64_t>(v.size()));
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return name;
  }
  // YOLO11's attention core over `x` [1, c, h, w] (one head): q^T k * scale -> Softmax -> v attn^T.
  std::string attention(const std::string& x, int c, int h, int w) {
    node("Reshape", {x, int64s(x + "_qkv_shape", {1, 1, c, h * w})}, x + "_qkv");
    ints(node("Transpose", {x + "_qkv"}, x + "_qT"), "perm", {0, 1, 3, 2});
    node("MatMul", {x + "_qT", x + "_qkv"}, x + "_qk");
    node("Mul", {x + "_qk", floats(x + "_scale", {0.5f}, true)}, x + "_qk_scaled");
    int1(node("Softmax", {x + "_qk_scaled"}, x + "_attn"), "axis", -1);
    ints(node("Transpose", {x + "_attn"}, x + "_attnT"), "perm", {0, 1, 3, 2});
    node("MatMul", {x + "_qkv", x + "_attnT"}, x + "_av");
    node("Reshape", {x + "_av", int64s(x + "_back_shape", {1, c, h, w})}, x + "_att");
    node("Add", {x, x + "_att"}, x + "_out");
    return x + "_out";
  }
  // One head level in the Ultralytics layout: Concat(box conv, class conv) on axis 1, then flattened.
  std::string level(const std::string& feat, int cin, int reg_max, int classes, const std::string& tag) {
    conv(feat, tag + "_box", cin, 4 * reg_max, 1);
    conv(feat, tag + "_cls", cin, classes, 1);
    int1(node("Concat", {tag + "_box", tag + "_cls"}, tag + "_cat"), "axis", 1);
    node("Reshape", {tag + "_cat", int64s(tag + "_flat_shape", {1, 4 * reg_max + classes, -1})},
         tag + "_flat");
    return tag + "_flat";
  }
  void metadata(const std::string& key, const std::string& value) {
    auto* p = model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }
  std::string bytes() const { return model.SerializeAsString(); }
};

// The adapter tests' two-level detector (reg_max 4, 2 classes, 64x64).
std::string two_level_detector() {
  GraphBuilder b;
  b.io(b.g.add_input(), "images", {1, 3, 64, 64});
  b.conv("images", "a", 3, 8, 8);
  b.conv("a", "b", 8, 8, 2);
  const auto l0 = b.level("a", 8, 4, 2, "p3"), l1 = b.level("b", 8, 4, 2, "p4");
  b.int1(b.node("Concat", {l0, l1}, "output0"), "axis", 2);
  b.io(b.g.add_output(), "output0", {1, 18, 80});
  return b.bytes();
}

// Three levels at 96x64 (rectangular), SiLU pairs, an attention block with spatial Reshape constants, an
// upsampling path (Resize by scales), MaxPool, and Ultralytics metadata.
std::string three_level_detector(bool with_names) {
  GraphBuilder b;
  const int H = 64, W = 96;
  b.io(b.g.add_input(), "images", {1, 3, H, W});
  b.conv("images", "s0", 3, 8, 4);
  b.silu("s0", "s0a");
  auto* pool = b.node("MaxPool", {"s0a"}, "p3f");  // stride 8
  b.ints(pool, "strides", {2, 2});
  b.ints(pool, "kernel_shape", {2, 2});
  b.conv("p3f", "p4c", 8, 8, 2);
  b.silu("p4c", "p4f");  // stride 16
  b.conv("p4f", "p5c", 8, 8, 2);
  b.silu("p5c", "p5a");  // stride 32
  const std::string p5 = b.attention("p5a", 8, H / 32, W / 32);
  b.node("Resize", {p5, "", b.floats("up_scales", {1.f, 1.f, 2.f, 2.f})}, "p5up");  // back to stride 16
  b.int1(b.node("Concat", {"p5up", "p4f"}, "p4cat"), "axis", 1);
  b.conv("p4cat", "p4m", 16, 8, 1);
  const auto l0 = b.level("p3f", 8, 2, 3, "d3"), l1 = b.level("p4m", 8, 2, 3, "d4"),
             l2 = b.level(p5, 8, 2, 3, "d5");
  b.int1(b.node("Concat", {l0, l1, l2}, "raw"), "axis", 2);
  // The stock decode tail the adapter cuts off: a stride multiply and a sigmoid.
  b.node("Mul", {"raw", b.floats("tail_scale", {1.f}, true)}, "scaled");
  b.node("Sigmoid", {"scaled"}, "output0");
  b.io(b.g.add_output(), "output0", {1, 11, 6 * 4 * 3 + 12 * 8});
  if (with_names) b.metadata("names", "{0: 'person', 1: 'bicycle', 2: \"car\"}");
  b.metadata("stride", "32");
  b.metadata("imgsz", "[64, 96]");
  b.metadata("description", "aitw fuzz seed");
  return b.bytes();
}

std::string not_a_detector() {
  GraphBuilder b;
  b.io(b.g.add_input(), "x", {1, 3, 32, 32});
  b.conv("x", "c", 3, 4, 2);
  b.node("Sigmoid", {"c"}, "y");
  b.io(b.g.add_output(), "y", {1, 4, 16, 16});
  return b.bytes();
}

void onnx_seeds(const fs::path& shared) {
  const std::string two = two_level_detector(), three = three_level_detector(true);
  // Each must be a model the adapter accepts (the seeds cover its success paths).
  for (const auto* s : {&two, &three}) {
    const auto m = aitw::model::OnnxModel::from_bytes(*s, "seed");
    (void)m.adapt(m.metadata().native_input);
  }
  write_seed("fuzz_onnx", "two_level", two);
  write_seed("fuzz_onnx", "three_level_attention", three);
  write_seed("fuzz_onnx", "three_level_no_names", three_level_detector(false));
  write_seed("fuzz_onnx", "not_a_detector", not_a_detector());
  write_seed("fuzz_onnx", "two_level_truncated", two.substr(0, two.size() * 2 / 3));
  write_seed("fuzz_onnx", "yolo11n_head_4k", read_file(shared / "models/yolo11n.onnx", 4096));
}

// --- fuzz_registry ---------------------------------------------------------------------------------------

void registry_seeds(const fs::path& shared, const fs::path& tmp) {
  const fs::path store = tmp / "store";
  aitw::registry::Registry r(aitw::registry::make_file_store(store.string()));
  const fs::path synthetic = tmp / "tiny.onnx";
  {
    std::ofstream f(synthetic, std::ios::binary);
    f << three_level_detector(true);
  }
  const std::string blob_sha = aitw::sha256_hex(std::string(aitw::fuzz::kRegistryBlob));
  for (const auto& [path, name] : {std::pair{shared / "models/yolo11n.onnx", std::string("yolo11n")},
                                   std::pair{synthetic, std::string("tiny")}}) {
    nlohmann::json m = r.push(path.string(), name, std::nullopt, {{"team", "edge"}, {"k", "v w"}});
    write_seed("fuzz_registry", "manifest_" + name, m.dump(2));
    // The same manifest as fuzz_registry's m@1, naming its store's blob: fetch() and resolve() succeed.
    m["name"] = "m";
    m["version"] = 1;
    m["sha256"] = blob_sha;
    m["size"] = aitw::fuzz::kRegistryBlob.size();
    write_seed("fuzz_registry", "manifest_" + name + "_fetchable", m.dump());
  }
  write_seed("fuzz_registry", "manifest_minimal",
             nlohmann::json{{"sha256", blob_sha}, {"version", 1}, {"name", "m"}}.dump());
}

// --- fuzz_recording --------------------------------------------------------------------------------------

void recording_seeds(const fs::path& tmp) {
  auto record = [&](const std::string& name, v1::PixelFormat format, int w, int h,
                    const std::vector<std::string>& frames) {
    v1::RecordingHeader header;
    header.set_version(1);
    header.set_width(w);
    header.set_height(h);
    header.set_fps(12);
    header.set_format(format);
    header.set_source("aitw_fuzz_seeds");
    header.set_created_unix_s(1700000000);
    header.set_frame_count(frames.size());
    const fs::path path = tmp / (name + ".aitwrec");
    aitw::datasets::RecordingWriter writer(path.string(), header);
    std::uint64_t id = 0;
    for (const auto& px : frames) {
      v1::Frame f;
      f.set_frame_id(id);
      f.set_ts_mono_ns(static_cast<std::int64_t>(id++) * 83'333'333);
      f.set_width(w);
      f.set_height(h);
      f.set_format(format);
      f.set_pixels(px);
      writer.write(f);
    }
    writer.close();
    return read_file(path);
  };
  const std::string jpegs = record(
      "jpeg", v1::JPEG, 16, 12, {jpeg(small(16, 12)), jpeg(small(16, 12), {cv::IMWRITE_JPEG_QUALITY, 20})});
  write_seed("fuzz_recording", "jpeg_2_frames", jpegs);
  write_seed("fuzz_recording", "jpeg_truncated", jpegs.substr(0, jpegs.size() - 17));
  write_seed("fuzz_recording", "rgb8_3_frames",
             record("rgb", v1::RGB8, 8, 6, {raw(small(8, 6), true), raw(small(8, 6), true), std::string()}));
  write_seed("fuzz_recording", "empty", record("empty", v1::BGR8, 4, 4, {}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: aitw_fuzz_seeds OUT SHARED\n";
    return 2;
  }
  aitw::set_log_level(aitw::LogLevel::Warn);
  g_out = argv[1];
  const fs::path shared = argv[2];
  const fs::path tmp = fs::temp_directory_path() / ("aitw_fuzz_seeds_" + std::to_string(getpid()));
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    g_image = cv::imread((shared / "datasets/images/bus.jpg").string());
    if (g_image.empty())
      throw std::runtime_error("cannot read " + (shared / "datasets/images/bus.jpg").string());
    jpeg_seeds();
    session_seeds();
    onnx_seeds(shared);
    registry_seeds(shared, tmp);
    recording_seeds(tmp);
  } catch (const std::exception& e) {
    std::cerr << "aitw_fuzz_seeds: " << e.what() << "\n";
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  std::cout << "aitw_fuzz_seeds: " << g_count << " seeds in " << g_out.string() << "\n";
  return 0;
}
