// aitw: the edge inference worker's command line. Each subcommand parses its flags and calls one library
// function.
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <pthread.h>
#include <sys/stat.h>
#include <regex>

#include <CLI/CLI.hpp>

#include "aitw/bench/kernel_cases.hpp"
#include "aitw/bench/pipeline_bench.hpp"
#include "aitw/bench/replay.hpp"
#include "aitw/datasets/record.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/net/metrics.hpp"
#include "aitw/net/server.hpp"
#include "aitw/pipeline/detect_job.hpp"
#include "aitw/base/defaults.hpp"
#include "aitw/base/host_port.hpp"
#include "aitw/base/log.hpp"
#include "aitw/registry/cli.hpp"

namespace {

using aitw::pipeline::InputSize;

// HOST:PORT flags (aitw/base/host_port.hpp): a bad value is a usage error naming the flag and the value.
const CLI::Validator kHostPort(
    [](std::string& s) {
      std::string error;
      return aitw::parse_host_port(s, &error) ? std::string() : "'" + s + "': " + error;
    },
    "HOST:PORT");

// --imgsz N (longer side, rectangular input) or HxW (that exact input).
void parse_imgsz(const std::string& s, aitw::pipeline::DetectorConfig& cfg) {
  // from_chars, not stoi: an out-of-range number is a usage error, not an uncaught exception.
  auto number = [&](const std::string& t) {
    int v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size() || v > 8192)
      throw CLI::ValidationError("--imgsz", "sizes must be multiples of 32 up to 8192, got '" + s + "'");
    return v;
  };
  std::smatch m;
  if (std::regex_match(s, m, std::regex(R"((\d+)\s*[xX,]\s*(\d+))"))) {
    cfg.fixed_input = InputSize{number(m[1]), number(m[2])};
  } else if (std::regex_match(s, std::regex(R"(\d+)"))) {
    cfg.imgsz = number(s);
    cfg.fixed_input.reset();
  } else {
    throw CLI::ValidationError("--imgsz", "expected N or HxW, got '" + s + "'");
  }
  const int stride = 32;
  auto check = [&](int v) {
    if (v <= 0 || v % stride != 0)
      throw CLI::ValidationError("--imgsz", "sizes must be positive multiples of 32, got '" + s + "'");
  };
  if (cfg.fixed_input) {
    check(cfg.fixed_input->height);
    check(cfg.fixed_input->width);
  } else {
    check(cfg.imgsz);
  }
}

// The shared token: the file's first line, surrounding whitespace trimmed. Never logged.
std::optional<std::string> read_token_file(const std::string& path) {
  std::ifstream f(path);
  std::string token;
  if (!f || !std::getline(f, token)) {
    std::cerr << "--auth-token-file: cannot read " << path << "\n";
    return std::nullopt;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  if (token.empty()) {
    std::cerr << "--auth-token-file: " << path << " holds no token\n";
    return std::nullopt;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077))
    aitw::log_warn("--auth-token-file " + path + " is readable by others (chmod 600 it)");
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aitw - edge inference worker for YOLO11/YOLOv8 object detection on CPU (OpenCV DNN)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("aitw 0.1.0"));
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "stderr log level: debug, info, warn, error, off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

  // --registry on detect, serve and replay: where name[@version] model references are looked up.
  std::string registry_uri;
  const std::string registry_help =
      "model registry for name[@version] references: file:///path or s3://bucket/prefix?endpoint=URL&region=R\n"
      "(default $AITW_REGISTRY, else file://$XDG_DATA_HOME/aitw/registry)";
  // --model-dir on detect and bench layers|pipeline: folders where model names are looked up first.
  std::vector<std::string> search_dirs;
  const std::string model_dir_help =
      "look model names up in DIR first (repeatable); then in $AITW_MODEL_DIR, $XDG_DATA_HOME/aitw/models\n"
      "and the registry";

  // detect
  aitw::pipeline::DetectJob job;
  job.detector.model_path = aitw::kDefaultModel;
  std::string imgsz = "640";
  auto* detect = app.add_subcommand(
      "detect",
      "Detect objects in images; prints one JSON object per image (boxes in image pixels).\n"
      "Exit code: 0 ok, 1 some image could not be read, 2 the model is unusable.");
  detect
      ->add_option("--model", job.detector.model_path,
                   "ONNX model: a path, or a name looked up in --model-dir, $AITW_MODEL_DIR,\n"
                   "$XDG_DATA_HOME/aitw/models (~/.local/share/aitw/models), then the registry")
      ->capture_default_str();
  detect->add_option("--model-dir", search_dirs, model_dir_help)->check(CLI::ExistingDirectory);
  detect
      ->add_option("--imgsz", imgsz,
                   "network input: N = longer side, smallest multiple-of-32 rectangle (640x480 frame -> "
                   "480x640); HxW = exactly that size (e.g. 640x640)")
      ->capture_default_str();
  detect->add_option("--conf", job.detector.conf, "confidence threshold")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  detect->add_option("--iou", job.detector.iou, "NMS IoU threshold (class-aware)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  detect->add_option("--max-det", job.detector.max_det, "maximum detections per image")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string classes;
  detect->add_option("--classes", classes,
                     "only these classes: ids or names, comma-separated (0,2 or person,bus)");
  detect->add_option("--annotate", job.annotate_dir,
                     "also write each image with boxes and labels drawn into DIR");
  detect->add_option("--threads", job.detector.threads, "OpenCV DNN threads (0 = OpenCV's default)")
      ->capture_default_str();
  detect->add_flag("--multi-label", job.detector.multi_label,
                   "keep every class above --conf per anchor (evaluation style), not only the best");
  detect->add_option("--registry", registry_uri, registry_help);
  detect->add_option("IMAGE", job.images, "image files")->required();

  // bench
  auto* bench = app.add_subcommand("bench", "Benchmarks: compare aitw's kernels with the OpenCV baseline");
  bench->require_subcommand(1);
  aitw::bench::BenchKernelsOptions bk;
  if (const char* env = std::getenv("AITW_SHARED_DIR"); env && *env) bk.shared_dir = env;
  auto* kernels = bench->add_subcommand(
      "kernels",
      "Time each kernel against its OpenCV baseline in the same process (preprocess, decode+NMS) and print\n"
      "a table of medians; exit 1 if a --gate fails.");
  kernels->add_option("--repetitions", bk.repetitions, "repetitions; the table shows medians")
      ->capture_default_str();
  kernels->add_option("--json", bk.json_path,
                      "also write {\"kernels\": [{name, ours_ms, baseline_ms, speedup}]} to FILE");
  kernels->add_option("--gate", bk.gate,
                      "minimum speedups by kernel name prefix, e.g. \"preprocess>=5,decode_nms>=5\"");
  kernels
      ->add_option("--shared", bk.shared_dir,
                   "folder with models/ and datasets/ (default $AITW_SHARED_DIR)")
      ->capture_default_str();

  aitw::bench::BenchLayersOptions bl;
  std::string bl_imgsz = "480x640";
  auto* layers = bench->add_subcommand(
      "layers", "Per-layer forward profile of the rewritten model (OpenCV's getPerfProfile), by layer type");
  layers->add_option("--model", bl.model, "ONNX model path or name")->capture_default_str();
  layers->add_option("--model-dir", search_dirs, model_dir_help)->check(CLI::ExistingDirectory);
  layers->add_option("--imgsz", bl_imgsz, "network input HxW (multiples of 32)")->capture_default_str();
  layers->add_flag("--opencv-layers", bl.opencv_layers, "profile with OpenCV's own layers instead of aitw's");
  layers->add_option("--repetitions", bl.repetitions, "forward passes averaged")->capture_default_str();

  aitw::bench::BenchPipelineOptions bp;
  bp.detector.model_path = aitw::kDefaultModel;
  std::string bp_imgsz = "640";
  auto* bpipe = bench->add_subcommand(
      "pipeline",
      "Play a recording in real time into the pipeline (in-process) and report drops, throughput and\n"
      "latency percentiles; exit 1 if a --gate fails");
  bpipe->add_option("--recording", bp.recording, "a .aitwrec file (see `aitw record`)")->required();
  bpipe->add_option("--model", bp.detector.model_path, "ONNX model path or name")->capture_default_str();
  bpipe->add_option("--model-dir", search_dirs, model_dir_help)->check(CLI::ExistingDirectory);
  bpipe->add_option("--imgsz", bp_imgsz, "network input: N (longer side, rectangular) or HxW")
      ->capture_default_str();
  bpipe->add_option("--fps", bp.fps, "offer rate; 0 = as fast as the pipeline takes frames (saturated)")
      ->capture_default_str();
  bpipe->add_option("--duration", bp.duration, "seconds to run (0 = the recording once)")
      ->capture_default_str();
  bpipe->add_option("--nets", bp.nets, "network instances run concurrently")->capture_default_str();
  bpipe->add_option("--threads", bp.threads, "OpenCV threads per network")->capture_default_str();
  bpipe->add_option("--conf", bp.detector.conf, "confidence threshold")->capture_default_str();
  bpipe->add_option("--json", bp.json_path, "also write the report as JSON to FILE");
  bpipe->add_option("--gate", bp.gate, "conditions, e.g. \"p95_ms<150,fps_processed>=10,drop_pct<=5\"");

  // record
  aitw::datasets::RecordOptions rec;
  std::string rec_size = "640x480";
  auto* record = app.add_subcommand(
      "record", "Build a recording (.aitwrec) from a directory of images, a list of images or a video");
  record->add_option("--from", rec.from, "DIR, IMAGE[,IMAGE...] or VIDEO")->required();
  record->add_option("--size", rec_size, "frame size WxH (images are scaled to cover it and centre-cropped)")
      ->capture_default_str();
  record->add_option("--fps", rec.fps, "frame rate of the timestamps")->capture_default_str();
  record->add_option("--duration", rec.duration, "seconds (0 = every source frame once; images loop)")
      ->capture_default_str();
  record->add_flag("--pan", rec.pan, "a moving window across each image, like a camera pan");
  record->add_option("--format", rec.format, "frame format: jpeg, bgr, rgb")->capture_default_str();
  record->add_option("--quality", rec.jpeg_quality, "JPEG quality")->capture_default_str();
  record->add_option("--out", rec.out, "output file (.aitwrec)")->required();

  // serve
  aitw::net::ServerConfig sc;
  std::string listen = "127.0.0.1:7070", idle = "60s", heartbeat = "10s";
  auto* serve = app.add_subcommand(
      "serve",
      "Run the worker: TCP + protobuf protocol (uint32LE length + Envelope), sessions, window 1.\n"
      "Stops gracefully on SIGTERM/SIGINT: frames inside are answered, sessions get End, exit 0.");
  serve->add_option("--listen", listen, "HOST:PORT (loopback unless told otherwise)")
      ->capture_default_str()
      ->check(kHostPort);
  serve->add_option("--idle-timeout", idle, "unload models after this long with no session (e.g. 60s, 500ms)")
      ->capture_default_str();
  serve->add_option("--heartbeat-timeout", heartbeat, "drop a peer silent for this long")
      ->capture_default_str();
  serve->add_option("--max-sessions", sc.max_sessions, "concurrent sessions")->capture_default_str();
  serve->add_option("--max-frame-bytes", sc.max_frame_bytes, "largest accepted message")
      ->capture_default_str();
  serve->add_option("--nets", sc.nets, "network instances per model")->capture_default_str();
  serve->add_option("--threads", sc.threads, "OpenCV threads per network")->capture_default_str();
  serve->add_option("--registry", registry_uri, registry_help);
  std::vector<std::string> model_dirs;
  serve->add_option("--model-dir", model_dirs,
                    "allow Init.model paths inside DIR (repeatable; default $AITW_MODEL_DIR if set). Names\n"
                    "(name, name@version) are always allowed, and looked up in DIR first; other paths, `..`\n"
                    "and symlinks out are refused");
  std::string auth_token_file;
  serve->add_option("--auth-token-file", auth_token_file,
                    "require Init.auth_token to equal the token in FILE (constant-time compare; a mismatch\n"
                    "is an Error and the connection is closed)");
  std::string metrics_listen;
  serve->add_option("--metrics", metrics_listen,
                    "HOST:PORT for HTTP /metrics (Prometheus), /healthz, /readyz")
      ->check(kHostPort);

  // replay
  aitw::bench::ReplayOptions rp;
  auto* replay = app.add_subcommand(
      "replay",
      "Offer a recording, image directory or video to a worker at a fixed rate through the client and\n"
      "report latency, drops and throughput; without --server an in-process worker on loopback is used");
  replay->add_option("SOURCE", rp.source, ".aitwrec, image directory or video")->required();
  replay->add_option("--server", rp.server, "HOST:PORT of a running `aitw serve`")->check(kHostPort);
  replay->add_option("--model", rp.model, "model reference sent in Init (name or path)")
      ->capture_default_str();
  replay->add_option("--fps", rp.fps, "offer rate; 0 = as fast as the worker answers")->capture_default_str();
  replay->add_option("--duration", rp.duration, "seconds (0 = the source once)")->capture_default_str();
  replay->add_option("--conf", rp.conf, "confidence threshold sent in Init (0 = the worker's default)");
  replay->add_option("--json", rp.json_path, "write the report as JSON");
  replay->add_option("--detections", rp.detections_path, "write one JSON line per result (FILE.jsonl)");
  std::string replay_token_file;
  replay->add_option("--auth-token-file", replay_token_file, "send the token in FILE in Init");
  replay->add_option("--registry", registry_uri, registry_help + " (for the in-process worker)");
  replay->add_option("--clients", rp.clients,
                     "concurrent clients, each with its own connection and Init, offering SOURCE at --fps,\n"
                     "started together. With N > 1 the top-level figures pool every client's frames\n"
                     "(fps_processed = total rate, p95_ms = p95 over all frames, drop_pct over all frames);\n"
                     "per-client figures go in a table and the JSON's `clients`, with fairness (min / max\n"
                     "client fps_processed), fps_processed_total/_min/_max, p50/p95/p99/max_ms_max (worst\n"
                     "client) and drop_pct_max, all gateable (with N = 1 they equal the top level)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  replay->add_option("--gate", rp.gate,
                     "conditions, e.g. \"p95_ms<150,fps_processed>=10,drop_pct<=5\" or, with --clients,\n"
                     "\"fairness>=0.8,p95_ms_max<2000,fps_processed_total>=8\"");

  // registry
  aitw::registry::RegistryCommand reg;
  std::vector<std::string> reg_labels;
  long long reg_version = 0;
  auto* registry = app.add_subcommand(
      "registry",
      "Versioned model bundles on a store: file:///path (the default: $AITW_REGISTRY, else\n"
      "$XDG_DATA_HOME/aitw/registry) or s3://bucket/prefix?endpoint=http://host:port&region=R (MinIO, AWS S3;\n"
      "credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN).\n"
      "--model / Init.model accept name or name@version from it (detect/serve/replay --registry URI).");
  registry->require_subcommand(1);
  registry->add_option("--registry", reg.uri, "store URI: file:///path or s3://bucket/prefix?endpoint=...");
  auto* r_push = registry->add_subcommand("push", "validate a model with the adapter and publish it");
  r_push->add_option("FILE", reg.file, "ONNX model")->required();
  r_push->add_option("--name", reg.name, "model name")->required();
  r_push->add_option("--version", reg_version, "version (default: latest + 1); immutable once published");
  r_push->add_option("--label", reg_labels, "free-form label k=v (repeatable)");
  auto* r_list = registry->add_subcommand("list", "list models and versions");
  r_list->add_option("NAME", reg.name, "only this model");
  r_list->add_flag("--json", reg.json, "JSON instead of a table");
  auto* r_show = registry->add_subcommand("show", "print a manifest");
  r_show->add_option("REF", reg.ref, "name or name@version")->required();
  auto* r_pull = registry->add_subcommand("pull", "fetch a model (verified) into the cache or --out");
  r_pull->add_option("REF", reg.ref, "name or name@version")->required();
  r_pull->add_option("--out", reg.out, "write the model here instead of the cache");
  auto* r_rm = registry->add_subcommand("rm", "remove one version");
  r_rm->add_option("REF", reg.ref, "name@version")->required();
  // `aitw registry list --registry URI` as well as `aitw registry --registry URI list`.
  for (auto* sub : {r_push, r_list, r_show, r_pull, r_rm}) sub->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; every usage error (bad value, missing argument, unknown flag) exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  // --model / Init.model may name registry models (AITW_REGISTRY or the default store).
  aitw::registry::install_model_resolver(registry_uri);
  aitw::model::set_model_dirs(search_dirs);
  using aitw::LogLevel;
  aitw::set_log_level(log_level == "debug"   ? LogLevel::Debug
                                : log_level == "warn"  ? LogLevel::Warn
                                : log_level == "error" ? LogLevel::Error
                                : log_level == "off"   ? LogLevel::Off
                                                       : LogLevel::Info);
  if (detect->parsed()) {
    try {
      parse_imgsz(imgsz, job.detector);
    } catch (const CLI::Error& e) {
      return app.exit(e);
    }
    for (std::size_t start = 0; start <= classes.size() && !classes.empty();) {
      const std::size_t comma = std::min(classes.find(',', start), classes.size());
      job.classes.push_back(classes.substr(start, comma - start));
      start = comma + 1;
    }
    return aitw::pipeline::run_detect_job(std::move(job), std::cout);
  }
  if (kernels->parsed()) return aitw::bench::run_bench_kernels(bk, std::cout);
  if (bpipe->parsed()) {
    try {
      parse_imgsz(bp_imgsz, bp.detector);
    } catch (const CLI::Error& e) {
      return app.exit(e);
    }
    return aitw::bench::run_bench_pipeline(bp, std::cout);
  }
  if (replay->parsed()) {
    if (!replay_token_file.empty()) {
      const auto token = read_token_file(replay_token_file);
      if (!token) return 2;
      rp.auth_token = *token;
    }
    return aitw::bench::run_replay(rp, std::cout);
  }
  if (registry->parsed()) {
    for (auto* sub : {r_push, r_list, r_show, r_pull, r_rm})
      if (sub->parsed()) reg.action = sub->get_name();
    if (reg_version > 0) reg.version = reg_version;
    for (const auto& l : reg_labels) {
      const auto eq = l.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "--label: expected k=v, got '" << l << "'\n";
        return 2;
      }
      reg.labels[l.substr(0, eq)] = l.substr(eq + 1);
    }
    return aitw::registry::run_registry_command(reg, std::cout, std::cerr);
  }
  if (serve->parsed()) {
    auto duration_ms = [](const std::string& v, std::chrono::milliseconds& out) {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      const std::string unit = end ? end : "";
      const double ms = unit == "ms"                    ? x
                        : unit == "m"                   ? x * 60000
                        : (unit.empty() || unit == "s") ? x * 1000
                                                        : -1;
      if (!(ms > 0) || ms > 1e10) return false;
      out = std::chrono::milliseconds(static_cast<long long>(ms));
      return true;
    };
    if (!duration_ms(idle, sc.idle_timeout) || !duration_ms(heartbeat, sc.heartbeat_timeout)) {
      std::cerr << "--idle-timeout/--heartbeat-timeout: expected e.g. 60s, 500ms or 2m\n";
      return 2;
    }
    const auto listen_at = *aitw::parse_host_port(listen);  // checked by kHostPort
    sc.host = listen_at.host;
    sc.port = listen_at.port;
    if (!auth_token_file.empty()) {
      const auto token = read_token_file(auth_token_file);
      if (!token) return 2;
      sc.auth_token = *token;
    }
    for (const auto& d : model_dirs)
      if (!std::filesystem::is_directory(d)) {
        std::cerr << "--model-dir: " << d << " is not a directory\n";
        return 2;
      }
    aitw::model::set_model_dirs(model_dirs);  // names too are looked up there first
    if (model_dirs.empty())
      if (const char* d = std::getenv("AITW_MODEL_DIR"); d && *d && std::filesystem::is_directory(d))
        model_dirs.push_back(d);
    sc.model_dirs = model_dirs;
    // Block the signals in every thread; this one waits for them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    aitw::net::Server server(sc);
    try {
      server.start();
    } catch (const std::exception& e) {
      std::cerr << "aitw serve: " << e.what() << "\n";
      return 2;
    }
    std::unique_ptr<aitw::net::MetricsEndpoint> metrics;
    if (!metrics_listen.empty()) {
      const auto metrics_at = *aitw::parse_host_port(metrics_listen);  // checked by kHostPort
      try {
        metrics = std::make_unique<aitw::net::MetricsEndpoint>(server, metrics_at.host, metrics_at.port);
        metrics->start();
        aitw::log_info("metrics on http://" + metrics_listen + "/metrics");
      } catch (const std::exception& e) {
        std::cerr << "aitw serve: " << e.what() << "\n";
        return 2;
      }
    }
    int sig = 0;
    sigwait(&set, &sig);
    aitw::log_info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                             ": draining and stopping");
    server.stop();
    if (metrics) metrics->stop();
    aitw::log_info("stopped");
    return 0;
  }
  if (record->parsed()) {
    if (std::sscanf(rec_size.c_str(), "%dx%d", &rec.width, &rec.height) != 2) {
      std::cerr << "--size: expected WxH, got '" << rec_size << "'\n";
      return 2;
    }
    return aitw::datasets::run_record(rec, std::cerr);
  }
  if (layers->parsed()) {
    if (std::sscanf(bl_imgsz.c_str(), "%dx%d", &bl.height, &bl.width) != 2 || bl.height <= 0 ||
        bl.width <= 0) {
      std::cerr << "--imgsz: expected HxW, got '" << bl_imgsz << "'\n";
      return 2;
    }
    return aitw::bench::run_bench_layers(bl, std::cout);
  }
  return 0;
}
