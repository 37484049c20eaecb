// `aitw detect` as a user runs it: real process, real files, exit codes and output lines.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdint>
#include <map>
#include <thread>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "aitw/datasets/recording.hpp"
#include "aitw/kernel/conv.hpp"
#include "aitw/testing/command.hpp"
#include "aitw/testing/ports.hpp"
#include "s3rver.hpp"

namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kAitw = AITW_BINARY;
const std::string kBus = kShared + "/datasets/images/bus.jpg";
const std::string kZidane = kShared + "/datasets/images/zidane.jpg";

struct Run : aitw::testing::CommandResult {
  std::vector<nlohmann::json> lines;
};

Run run(const std::string& args, const std::string& env = "") {
  // aitw looks model names up in the model folders only; `env` may override this one.
  Run r{aitw::testing::run_command("AITW_MODEL_DIR=" + kShared + "/models " + env + " " + kAitw + " " + args),
        {}};
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded())
        r.lines.push_back(std::move(j));  // multi-line JSON (registry show) is not a line
    }
  return r;
}

std::map<std::string, int> count_classes(const nlohmann::json& j) {
  std::map<std::string, int> c;
  for (const auto& d : j["detections"]) ++c[d["class_name"].get<std::string>()];
  return c;
}

}  // namespace

TEST(CliDetect, BusHasFourPersonsAndOneBus) {
  const auto r = run("detect --model " + kShared + "/models/yolo11n.onnx " + kBus);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 1u);
  const auto& j = r.lines[0];
  EXPECT_EQ(count_classes(j), (std::map<std::string, int>{{"person", 4}, {"bus", 1}}));
  EXPECT_EQ(j["image"], kBus);
  EXPECT_EQ(j["width"], 810);
  EXPECT_EQ(j["height"], 1080);
  EXPECT_EQ(j["input"], (nlohmann::json{640, 480}));  // rectangular default
  EXPECT_EQ(j["model"]["name"], "yolo11n");
  EXPECT_EQ(j["model"]["sha256"].get<std::string>().size(), 64u);
  for (const char* stage : {"preprocess", "infer", "postprocess"})
    EXPECT_GT(j["ms"][stage].get<double>(), 0.0);
  for (const auto& d : j["detections"]) {
    const auto b = d["box"].get<std::vector<double>>();
    ASSERT_EQ(b.size(), 4u);
    EXPECT_LE(0, b[0]);
    EXPECT_LT(b[0], b[2]);
    EXPECT_LE(b[2], 810);
    EXPECT_LE(b[3], 1080);
  }
  // The load log says what the adapter rewrote.
  EXPECT_NE(r.err.find("head cut at 3 raw level outputs"), std::string::npos) << r.err;
}

TEST(CliDetect, FindsModelThroughAitwModelDir) {
  const auto r =
      run("detect --model yolov8n --imgsz 640x640 " + kZidane, "AITW_MODEL_DIR=" + kShared + "/models");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.lines[0]["model"]["name"], "yolov8n");
  EXPECT_EQ(r.lines[0]["input"], (nlohmann::json{640, 640}));
}

TEST(CliDetect, FindsModelThroughModelDirFlag) {
  // --model-dir is searched before $AITW_MODEL_DIR (empty here), and named in the error when nothing matches.
  const std::string models = kShared + "/models";
  const auto r = run("detect --model yolov8n --model-dir " + models + " --imgsz 640x640 " + kZidane,
                     "AITW_MODEL_DIR=/nonexistent");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.lines[0]["model"]["name"], "yolov8n");
  const auto missing =
      run("detect --model nosuchmodel --model-dir " + models + " " + kBus, "AITW_MODEL_DIR=/nonexistent");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find(models + "/nosuchmodel.onnx (--model-dir)"), std::string::npos) << missing.err;
  EXPECT_EQ(run("detect --model-dir /nonexistent-dir " + kBus).exit_code, 2);  // usage error
  const auto layers =
      run("bench layers --model yolo11n --model-dir " + models + " --imgsz 320x320 --repetitions 1",
          "AITW_MODEL_DIR=/nonexistent");
  EXPECT_EQ(layers.exit_code, 0) << layers.err;
}

TEST(CliDetect, UnreadableImageIsReportedAndOthersStillProcessed) {
  const fs::path bad = fs::temp_directory_path() / "aitw_cli_not_an_image.jpg";
  std::ofstream(bad) << "this is not a jpeg";
  const auto r =
      run("detect --model " + kShared + "/models/yolo11n.onnx " + bad.string() + " /nonexistent.jpg " + kBus);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(r.lines.size(), 3u);
  EXPECT_NE(r.lines[0]["error"].get<std::string>().find("cannot decode"), std::string::npos);
  EXPECT_NE(r.lines[1]["error"].get<std::string>().find("not found"), std::string::npos);
  EXPECT_EQ(count_classes(r.lines[2])["person"], 4);
}

TEST(CliDetect, BadModelIsOneClearLineAndExitTwo) {
  const fs::path bad = fs::temp_directory_path() / "aitw_cli_broken.onnx";
  std::ofstream(bad) << "garbage that is not a protobuf model";
  const auto r = run("detect --model " + bad.string() + " " + kBus);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.lines.empty());
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not an ONNX model"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliDetect, ConvIsaEnvPinsTheKernelLevel) {
  // AITW_CONV_ISA: the portable kernels run everywhere aitw's convolution does (an AVX2 box or better).
  // AITW_CONV cleared: the sanitizer run gives the CLI suites OpenCV's convolution (AITW_CONV=opencv).
  const auto p = run("detect --model yolo11n --precision bf16 " + kBus, "AITW_CONV= AITW_CONV_ISA=portable");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.err.find("aitw Convolution (portable kernels, fp32"), std::string::npos) << p.err;
  EXPECT_EQ(p.err.find(", bf16)"), std::string::npos) << p.err;  // bf16 runs on the AVX-512 kernels only
  ASSERT_EQ(p.lines.size(), 1u);
  EXPECT_EQ(count_classes(p.lines[0]), (std::map<std::string, int>{{"person", 4}, {"bus", 1}}));
  // A word that names no level: the model is unusable (exit 2), one line naming the variable.
  const auto bad = run("detect --model yolo11n " + kBus, "AITW_CONV= AITW_CONV_ISA=sse9");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(bad.lines.empty());
  EXPECT_NE(bad.err.find("AITW_CONV_ISA=sse9: not a kernel level (avx512, avx2 or portable)"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  // `serve` refuses to start rather than fail every Init (bounded: a serve that started would be killed).
  const auto srv = aitw::testing::run_command("AITW_CONV= AITW_CONV_ISA=sse9 timeout 20 " + kAitw +
                                              " serve --listen 127.0.0.1:47091");
  EXPECT_EQ(srv.exit_code, 2) << srv.err;
  EXPECT_NE(srv.err.find("aitw serve: AITW_CONV_ISA=sse9: not a kernel level"), std::string::npos) << srv.err;
}

TEST(CliDetect, ParallelEnvChoosesWhereTheLoopsRun) {
  // AITW_PARALLEL: aitw's loop pool by default, OpenCV's backend with `opencv`; the load log says which, and
  // the detections are the same. (AITW_CONV cleared as above: its convolution entry is the log line.)
  for (const std::string v : {"", "aitw", "opencv"}) {
    const auto p = run("detect --model yolo11n " + kBus, "AITW_CONV= AITW_PARALLEL=" + v);
    ASSERT_EQ(p.exit_code, 0) << v << ": " << p.err;
    EXPECT_NE(p.err.find(v == "opencv" ? "; OpenCV's loops)" : "; aitw's loop pool)"), std::string::npos)
        << v << ": " << p.err;
    ASSERT_EQ(p.lines.size(), 1u) << v;
    EXPECT_EQ(count_classes(p.lines[0]), (std::map<std::string, int>{{"person", 4}, {"bus", 1}})) << v;
  }
  // Any other word fails the load (exit 2) with one line naming the variable, and `serve` refuses to start.
  const auto bad = run("detect --model yolo11n " + kBus, "AITW_CONV= AITW_PARALLEL=tbb");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(bad.lines.empty());
  EXPECT_NE(bad.err.find("AITW_PARALLEL='tbb': expected aitw or opencv"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  const auto srv = aitw::testing::run_command("AITW_CONV= AITW_PARALLEL=tbb timeout 20 " + kAitw +
                                              " serve --listen 127.0.0.1:47092");
  EXPECT_EQ(srv.exit_code, 2) << srv.err;
  EXPECT_NE(srv.err.find("AITW_PARALLEL='tbb'"), std::string::npos) << srv.err;
}

TEST(CliDetect, TruncatedModelIsRejected) {
  const fs::path cut = fs::temp_directory_path() / "aitw_cli_truncated.onnx";
  fs::copy_file(kShared + "/models/yolo11n.onnx", cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  const auto r = run("detect --model " + cut.string() + " " + kBus);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(cut.string()), std::string::npos) << r.err;
}

TEST(CliDetect, MissingModelExplainsWhereToPutOne) {
  const auto r = run("detect --model nosuchmodel " + kBus, "AITW_MODEL_DIR=/nonexistent");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/nosuchmodel.onnx"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("yolo export"), std::string::npos) << r.err;
}

TEST(CliDetect, ClassFilterByNameAndId) {
  const auto r =
      run("detect --model " + kShared + "/models/yolo11n.onnx --classes bus,27 " + kBus + " " + kZidane);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_classes(r.lines[0]), (std::map<std::string, int>{{"bus", 1}}));
  EXPECT_EQ(count_classes(r.lines[1]), (std::map<std::string, int>{{"tie", 1}}));
  const auto bad = run("detect --model " + kShared + "/models/yolo11n.onnx --classes unicorn " + kBus);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown class 'unicorn'"), std::string::npos) << bad.err;
}

TEST(CliDetect, AnnotateWritesImages) {
  const fs::path dir = fs::temp_directory_path() / ("aitw_cli_annotated_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const auto r = run("detect --model " + kShared + "/models/yolo11n.onnx --annotate " + dir.string() + " " +
                     kBus + " " + kZidane);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(fs::file_size(dir / "bus.jpg"), 10000u);
  EXPECT_GT(fs::file_size(dir / "zidane.jpg"), 10000u);
  fs::remove_all(dir);
}

TEST(CliDetect, MaxDetAndThresholdsApply) {
  const auto r = run("detect --model " + kShared + "/models/yolo11n.onnx --conf 0.5 --max-det 2 " + kBus);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines[0]["detections"].size(), 2u);
  for (const auto& d : r.lines[0]["detections"]) EXPECT_GT(d["score"].get<double>(), 0.5);
}

TEST(CliDetect, UsageErrors) {
  EXPECT_NE(run("detect --imgsz 630 " + kBus).exit_code, 0);
  for (const char* huge : {"99999999999", "64x99999999999"}) {
    const auto r = run(std::string("detect --imgsz ") + huge + " " + kBus);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;  // a usage error, not an abort
  }
  EXPECT_EQ(run("detect --model " + kShared + "/models/yolo11n.onnx --classes 99999999999 " + kBus).exit_code,
            2);
  EXPECT_NE(run("detect").exit_code, 0);  // no image
  const auto help = run("detect --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--annotate"), std::string::npos);
}

// A bad HOST:PORT is a usage error naming the flag and the value, before anything listens or connects.
// (`timeout`: were a value let through, serve would run until killed.)
TEST(CliUsage, BadHostPortNamesTheFlag) {
  for (const std::string value : {"127.0.0.1:abc", "127.0.0.1:70000"}) {
    for (const std::string& args :
         {std::string("serve --listen "), std::string("serve --metrics "), "replay " + kBus + " --server "}) {
      const std::string flag = args.substr(args.find("--"), args.size() - args.find("--") - 1);
      SCOPED_TRACE(args + value);
      const auto r = run(args + value, "timeout 20");
      EXPECT_EQ(r.exit_code, 2) << r.err;
      EXPECT_NE(r.err.find(flag + ": '" + value + "'"), std::string::npos) << r.err;
    }
  }
}

// `replay --server` takes a list: a bad entry anywhere in it is the usage error, named alone.
TEST(CliUsage, BadServerListNamesTheBadEntry) {
  for (const std::string bad : {"127.0.0.1:abc", "127.0.0.1", ""}) {
    const std::string list = "127.0.0.1:7070," + bad + ",127.0.0.1:7071";
    SCOPED_TRACE(list);
    const auto r = run("replay " + kBus + " --server '" + list + "'", "timeout 20");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--server: '" + bad + "'"), std::string::npos) << r.err;
  }
}

// Every bad flag value exits 2, the code of usage errors (--imgsz exited with CLI11's 105), and says which.
TEST(CliUsage, BadValuesExitTwoNamingTheFlag) {
  // The flag at fault comes first: the check looks for the first flag's name in the error.
  for (const std::string& args :
       {"detect --imgsz 630 " + kBus, "detect --imgsz abc " + kBus, std::string("bench layers --imgsz 3"),
        std::string("record --size 12 --from x --out /tmp/x.aitwrec"), std::string("serve --idle-timeout 5x"),
        std::string("serve --heartbeat-timeout 0"), std::string("serve --max-session-age 5x"),
        "registry push --label x --name n " + kBus}) {
    SCOPED_TRACE(args);
    const auto r = run(args, "timeout 20");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const auto flag = args.substr(args.find("--"), args.find(' ', args.find("--")) - args.find("--"));
    EXPECT_NE(r.err.find(flag + ":"), std::string::npos) << r.err;
  }
}

TEST(CliBenchKernels, PrintsTableWritesJsonAndChecksGates) {
  const fs::path json = fs::temp_directory_path() / ("aitw_bench_" + std::to_string(getpid()) + ".json");
  const auto r = run("bench kernels --shared " + kShared + " --repetitions 1 --json " + json.string() +
                     " --gate 'decode_nms_bus>=0.001'");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("decode_nms_bus"), std::string::npos);
  EXPECT_NE(r.out.find("gate ok: decode_nms_bus"), std::string::npos);
  std::ifstream f(json);
  const auto j = nlohmann::json::parse(f);
  std::set<std::string> names;
  for (const auto& k : j["kernels"]) {
    names.insert(k["name"].get<std::string>());
    EXPECT_GT(k["ours_ms"].get<double>(), 0.0);
    EXPECT_GT(k["baseline_ms"].get<double>(), 0.0);
    EXPECT_NEAR(k["speedup"].get<double>(), k["baseline_ms"].get<double>() / k["ours_ms"].get<double>(),
                0.5 * k["speedup"].get<double>());
  }
  for (const char* n :
       {"preprocess_640x480_fresh", "preprocess_1280x720_reused", "decode_nms_crowd2000",
        "upsample2x_256x15x20", "upsample2x_128x30x40", "maxpool5x5_128x15x20", "forward_yolo11n_480x640"})
    EXPECT_TRUE(names.count(n)) << n;
  fs::remove(json);
}

TEST(CliBenchKernels, FailedOrMalformedGates) {
  EXPECT_EQ(run("bench kernels --shared " + kShared + " --repetitions 1 --gate 'decode_nms_bus>=1000000000'")
                .exit_code,
            1);
  EXPECT_EQ(run("bench kernels --shared " + kShared + " --repetitions 1 --gate 'nosuchkernel>=1'").exit_code,
            1);
  EXPECT_EQ(run("bench kernels --shared " + kShared + " --gate 'decode_nms<5'").exit_code, 2);
  EXPECT_EQ(run("bench kernels --shared /nonexistent --repetitions 1").exit_code, 2);
}

TEST(CliBenchLayers, ProfilesByLayerType) {
  const auto ours = run("bench layers --model " + kShared + "/models/yolo11n.onnx --repetitions 2");
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  EXPECT_NE(ours.out.find("AitwSiLU"), std::string::npos) << ours.out;
  EXPECT_NE(ours.out.find("AitwAttention"), std::string::npos);
  EXPECT_NE(ours.out.find("forward "), std::string::npos);
  const auto opencv = run("bench layers --opencv-layers --imgsz 320x320 --model " + kShared +
                          "/models/yolov8n.onnx --repetitions 1");
  ASSERT_EQ(opencv.exit_code, 0) << opencv.err;
  EXPECT_NE(opencv.out.find("Sigmoid"), std::string::npos);
  EXPECT_EQ(opencv.out.find("Aitw"), std::string::npos);
  EXPECT_EQ(run("bench layers --model /nonexistent.onnx").exit_code, 2);
  // --stdin-rounds (what bench/peer/peer.js drives): "ready", then a round per line read, JSON lines only;
  // --json covers every round's forwards.
  const fs::path requests = fs::temp_directory_path() / ("aitw_rounds_" + std::to_string(getpid()));
  std::ofstream(requests) << "\n\n";
  const fs::path rounds_json =
      fs::temp_directory_path() / ("aitw_rounds_" + std::to_string(getpid()) + ".json");
  const auto rounds = run("bench layers --stdin-rounds --imgsz 320x320 --repetitions 2 --model " + kShared +
                          "/models/yolo11n.onnx --json " + rounds_json.string() + " < " + requests.string());
  fs::remove(requests);
  ASSERT_EQ(rounds.exit_code, 0) << rounds.err;
  EXPECT_EQ(rounds.out.find("forward "), std::string::npos) << rounds.out;  // no text report
  ASSERT_EQ(rounds.lines.size(), 3u) << rounds.out;
  EXPECT_EQ(rounds.lines[0]["ready"], true);
  for (int k = 1; k <= 2; ++k) {
    EXPECT_EQ(rounds.lines[k]["round"], k);
    EXPECT_GT(rounds.lines[k]["forward_ms_median"].get<double>(), 0);
  }
  // A --json report, read and removed.
  const auto take_json = [](const fs::path& path) {
    std::ifstream f(path);
    auto parsed = nlohmann::json::parse(f);
    fs::remove(path);
    return parsed;
  };
  const auto rj = take_json(rounds_json);
  EXPECT_EQ(rj["forwards"], 4);
  EXPECT_EQ(rj["repetitions"], 2);
  // --json: the precision that ran and every layer (their means add up to the total); --precision checked.
  const fs::path json = fs::temp_directory_path() / ("aitw_layers_" + std::to_string(getpid()) + ".json");
  const auto fp32 = run("bench layers --precision fp32 --imgsz 320x320 --repetitions 1 --model " + kShared +
                        "/models/yolo11n.onnx --json " + json.string());
  ASSERT_EQ(fp32.exit_code, 0) << fp32.err;
  const auto j = take_json(json);
  EXPECT_EQ(j["precision"], "fp32");
  ASSERT_TRUE(j["per_layer"].is_array());
  double sum = 0;
  int convs = 0;
  for (const auto& l : j["per_layer"]) {
    sum += l["ms"].get<double>();
    convs += l["type"] == "Convolution";
  }
  EXPECT_EQ(convs, 87);
  EXPECT_NEAR(sum, j["layers_ms_mean"].get<double>(), 1e-6 * std::max(1.0, sum));
  // The layout: fp32 reads and writes NCHW as it is, no pairs and no reorders (aitw's 87 convolutions where
  // they run, every x86-64 CPU with AVX2 and aarch64).
  const auto& fl = j["layout"];
  EXPECT_EQ(fl["bf16_convolutions"], 0);
  EXPECT_TRUE(fl["fp32_convolutions"] == 87 || fl["fp32_convolutions"] == 0) << fl;
  EXPECT_EQ(fl["pair_outputs"].get<int>() + fl["pair_inputs"].get<int>() + fl["converted_inputs"].get<int>() +
                fl["pool_pair_outputs"].get<int>() + fl["residual_pairs"].get<int>(),
            0);
  if (fl["fp32_convolutions"] == 87) {
    EXPECT_NE(fp32.out.find("layout: NCHW throughout, no reorders (87 aitw convolutions, fp32)"),
              std::string::npos)
        << fp32.out;
  }
  // bf16 (fp32 where the CPU lacks AVX512_BF16): the totals are the layers' sums; a bf16 layer reads each
  // input as pairs or converts it, and the stem's input (the image) is always converted.
  const auto bf16 = run("bench layers --precision bf16 --imgsz 320x320 --repetitions 1 --model " + kShared +
                        "/models/yolo11n.onnx --json " + json.string());
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  const auto bj = take_json(json);
  std::map<std::string, int> totals{{"bf16_convolutions", 0}, {"fp32_convolutions", 0},
                                    {"pair_outputs", 0},      {"pair_inputs", 0},
                                    {"converted_inputs", 0},  {"residual_pairs", 0}};
  int pool_pairs = 0;  // SPPF's max pool chain on pairs
  for (const auto& l : bj["per_layer"]) {
    if (l.contains("pair_outputs")) {
      EXPECT_EQ(l["type"], "AitwMaxPoolChain");
      pool_pairs += l["pair_outputs"].get<int>();
    }
    if (l["type"] != "Convolution" || !l.contains("precision")) continue;
    ++totals[l["precision"] == "bf16" ? "bf16_convolutions" : "fp32_convolutions"];
    // fp32 layers convert nothing (a depthwise one may read pairs as they are: kernel::conv_fp32_pairs).
    if (l["precision"] == "fp32") {
      EXPECT_EQ(l["converted_inputs"].get<int>(), 0);
    }
    totals["pair_outputs"] += l["pairs_out"].get<bool>();
    totals["pair_inputs"] += l["pair_inputs"].get<int>();
    totals["converted_inputs"] += l["converted_inputs"].get<int>();
    totals["residual_pairs"] += l["residual_pairs"].get<bool>();
    if (l["residual_pairs"].get<bool>()) {
      EXPECT_EQ(l["precision"], "bf16") << l["name"];
    }
  }
  for (const auto& [key, value] : totals) EXPECT_EQ(bj["layout"][key], value) << key;
  EXPECT_EQ(bj["layout"]["pool_pair_outputs"], pool_pairs);
  const int bf16_layers = bj["layout"]["bf16_convolutions"];
  EXPECT_EQ(pool_pairs, bf16_layers > 0 ? 3 : 0);
  if (bf16_layers > 0) {
    EXPECT_NE(bf16.out.find("(and 3 by max pools on pairs)"), std::string::npos) << bf16.out;
    EXPECT_GT(bj["layout"]["pair_outputs"], 0);
    EXPECT_GT(bj["layout"]["converted_inputs"], 0);
    EXPECT_GT(bj["layout"]["residual_pairs"],
              0);  // the C3k2 bottlenecks' skips (AdaptOptions::residual_pairs)
    EXPECT_NE(bf16.out.find("reorders: " + std::to_string(bj["layout"]["converted_inputs"].get<int>()) +
                            " fp32 inputs converted to pairs"),
              std::string::npos)
        << bf16.out;
  }
  const auto bad = run("bench layers --precision fp16 --model " + kShared + "/models/yolo11n.onnx");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'fp16' is not fp32, bf16 or auto"), std::string::npos) << bad.err;
}

namespace {
std::vector<cv::Mat> read_recording(const fs::path& path, aitw::v1::RecordingHeader* header = nullptr) {
  aitw::datasets::RecordingReader r(path.string());
  if (header) *header = r.header();
  std::vector<cv::Mat> frames;
  while (auto f = r.next()) {
    const std::string& px = f->pixels();
    frames.push_back(cv::imdecode(
        cv::Mat(1, static_cast<int>(px.size()), CV_8U, const_cast<char*>(px.data())), cv::IMREAD_COLOR));
  }
  return frames;
}
double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_L1) / a.total() / 3;
}
}  // namespace

TEST(CliRecord, ImagesDirectoryScaledAndCroppedToSize) {
  const fs::path out = fs::temp_directory_path() / ("aitw_rec_dir_" + std::to_string(getpid()) + ".aitwrec");
  const auto r =
      run("record --from " + kShared + "/datasets/images --size 320x240 --fps 10 --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  aitw::v1::RecordingHeader h;
  const auto frames = read_recording(out, &h);
  ASSERT_EQ(frames.size(), 2u);  // bus.jpg, zidane.jpg
  EXPECT_EQ(h.width(), 320u);
  EXPECT_EQ(h.fps(), 10);
  for (const auto& f : frames) EXPECT_EQ(f.size(), cv::Size(320, 240));
  fs::remove(out);
}

TEST(CliRecord, CameraPanMovesSmoothlyAcrossBothImages) {
  const fs::path out = fs::temp_directory_path() / ("aitw_rec_pan_" + std::to_string(getpid()) + ".aitwrec");
  const auto r = run("record --pan --from " + kBus + "," + kZidane +
                     " --size 640x480 --fps 12 --duration 20 --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto frames = read_recording(out);
  ASSERT_EQ(frames.size(), 240u);  // 120 frames per image: a move of a few pixels per frame at most
  // Neighbours are the same scene moved by a few pixels (a translation, found by phase correlation).
  cv::Mat a, b;
  cv::cvtColor(frames[30], a, cv::COLOR_BGR2GRAY);
  cv::cvtColor(frames[31], b, cv::COLOR_BGR2GRAY);
  a.convertTo(a, CV_32F);
  b.convertTo(b, CV_32F);
  const cv::Point2d shift = cv::phaseCorrelate(a, b);
  EXPECT_GT(std::hypot(shift.x, shift.y), 1.0);
  EXPECT_LT(std::hypot(shift.x, shift.y), 20.0);
  EXPECT_LT(mean_abs_diff(frames[30], frames[31]), mean_abs_diff(frames[0], frames[60]));
  EXPECT_GT(mean_abs_diff(frames[60], frames[180]), 30);  // the other image
  fs::remove(out);
}

TEST(CliRecord, FromAVideoFile) {
  const fs::path video = fs::temp_directory_path() / ("aitw_rec_" + std::to_string(getpid()) + ".avi");
  {
    cv::VideoWriter w(video.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(320, 200));
    ASSERT_TRUE(w.isOpened());
    for (int i = 0; i < 7; ++i) w.write(cv::Mat(200, 320, CV_8UC3, cv::Scalar(i * 30, 80, 200 - i * 20)));
  }
  const fs::path out = fs::temp_directory_path() / ("aitw_rec_vid_" + std::to_string(getpid()) + ".aitwrec");
  const auto r = run("record --from " + video.string() + " --size 160x120 --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_recording(out).size(), 7u);
  fs::remove(out);
  fs::remove(video);
}

TEST(CliRecord, ClearErrors) {
  EXPECT_EQ(run("record --from /nonexistent --out /tmp/x.aitwrec").exit_code, 2);
  EXPECT_NE(run("record --from /nonexistent --out /tmp/x.aitwrec").err.find("not found"), std::string::npos);
  const fs::path empty = fs::temp_directory_path() / ("aitw_empty_" + std::to_string(getpid()));
  fs::create_directories(empty);
  EXPECT_NE(run("record --from " + empty.string() + " --out /tmp/x.aitwrec").err.find("no images"),
            std::string::npos);
  const fs::path junk = empty / "junk.mp4";
  std::ofstream(junk) << "not a video";
  EXPECT_EQ(run("record --from " + junk.string() + " --out /tmp/x.aitwrec").exit_code, 2);
  fs::remove_all(empty);
}

TEST(CliBenchPipeline, ReportsAndGates) {
  const fs::path rec = fs::temp_directory_path() / ("aitw_bp_" + std::to_string(getpid()) + ".aitwrec");
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 2 --out " + rec.string()).exit_code, 0);
  const fs::path json = fs::temp_directory_path() / ("aitw_bp_" + std::to_string(getpid()) + ".json");
  const auto r =
      run("bench pipeline --model " + kShared + "/models/yolo11n.onnx --recording " + rec.string() +
          " --fps 12 --duration 2 --json " + json.string() +
          " --gate 'fps_processed>0,drop_pct<=100'");  // the gate mechanism, not speed (CI gates that)
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("end-to-end"), std::string::npos);
  std::ifstream f(json);
  const auto j = nlohmann::json::parse(f);
  for (const char* k : {"frames_offered", "frames_processed", "frames_dropped", "drop_pct", "fps_processed",
                        "e2e_ms", "stages_ms", "model", "input", "threads"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["frames_offered"].get<int>(), 24);
  EXPECT_EQ(j["frames_processed"].get<int>() + j["frames_dropped"].get<int>(), 24);
  EXPECT_GT(j["e2e_ms"]["p95"].get<double>(), j["stages_ms"]["infer"]["p50"].get<double>() * 0.5);
  EXPECT_EQ(j["input"], (nlohmann::json{480, 640}));

  const auto missed = run("bench pipeline --model " + kShared + "/models/yolo11n.onnx --recording " +
                          rec.string() + " --duration 1 --gate 'p95_ms<0.001'");
  EXPECT_EQ(missed.exit_code, 1);
  EXPECT_NE(missed.out.find("GATE FAILED: p95_ms"), std::string::npos) << missed.out;
  EXPECT_EQ(run("bench pipeline --recording /nonexistent.aitwrec").exit_code, 2);
  {  // a recording whose header declares a 0x0 frame size
    const fs::path zero =
        fs::temp_directory_path() / ("aitw_bp_zero_" + std::to_string(getpid()) + ".aitwrec");
    aitw::v1::RecordingHeader h;
    aitw::datasets::RecordingWriter w(zero.string(), h);
    aitw::v1::Frame frame;
    frame.set_pixels("x");
    w.write(frame);
    w.close();
    const auto bad = run("bench pipeline --recording " + zero.string());
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_NE(bad.err.find("invalid header"), std::string::npos) << bad.err;
    fs::remove(zero);
  }
  EXPECT_EQ(run("bench pipeline --recording " + rec.string() + " --gate 'p95<<3'").exit_code, 2);
  fs::remove(rec);
  fs::remove(json);
}

// --precision reaches the in-process worker (it ran fp32 whatever `aitw serve` would run by default): the
// default (auto) runs what --precision bf16 runs, bf16 where the CPU has it; fp32 when asked. Under the
// sanitizer run's AITW_CONV=opencv all three name OpenCV's convolution.
TEST(CliReplay, PrecisionReachesTheInProcessWorker) {
  const fs::path rec = fs::temp_directory_path() / ("aitw_rpp_" + std::to_string(getpid()) + ".aitwrec");
  ASSERT_EQ(run("record --from " + kBus + " --fps 12 --duration 1 --out " + rec.string()).exit_code, 0);
  const auto conv = [&](const std::string& flag) {
    const fs::path json = fs::temp_directory_path() / ("aitw_rpp_" + std::to_string(getpid()) + ".json");
    const auto r = run("replay " + rec.string() + " --model " + kShared +
                       "/models/yolo11n.onnx --duration 0.25" + flag + " --json " + json.string());
    EXPECT_EQ(r.exit_code, 0) << flag << r.err;
    std::ifstream jf(json);
    const auto j = nlohmann::json::parse(jf, nullptr, false);
    fs::remove(json);
    return j.is_object() && j.contains("providers") && j["providers"].size() == 2
               ? j["providers"][1].get<std::string>()
               : std::string("(no providers)");
  };
  const std::string by_default = conv(""), fp32 = conv(" --precision fp32"), bf16 = conv(" --precision bf16");
  EXPECT_EQ(by_default, bf16);
  const bool aitw = fp32.rfind("aitw ", 0) == 0;
  if (aitw) {
    EXPECT_TRUE(fp32.ends_with(", fp32")) << fp32;
    // bf16 runs on the AVX-512 kernels of a CPU with AVX512_BF16; elsewhere it is fp32.
    if (fp32.find("avx512 kernels") != std::string::npos && aitw::kernel::conv_bf16_supported())
      EXPECT_TRUE(bf16.ends_with(", bf16")) << bf16;
    else
      EXPECT_EQ(bf16, fp32);
  } else {
    EXPECT_EQ(fp32, bf16);  // OpenCV's convolution: one description
  }
  fs::remove(rec);
}

TEST(CliReplay, InProcessServerReportAndDetections) {
  const fs::path rec = fs::temp_directory_path() / ("aitw_rp_" + std::to_string(getpid()) + ".aitwrec");
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 2 --out " + rec.string()).exit_code, 0);
  const fs::path json = fs::temp_directory_path() / ("aitw_rp_" + std::to_string(getpid()) + ".json");
  const fs::path dets = fs::temp_directory_path() / ("aitw_rp_" + std::to_string(getpid()) + ".jsonl");
  const auto r =
      run("replay " + rec.string() + " --model " + kShared + "/models/yolo11n.onnx --json " + json.string() +
          " --detections " + dets.string() +
          " --gate 'fps_processed>0,clients<=1,fairness>=1,fps_processed_min>0'");  // mechanism only
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(r.out.find("\nfairness "), std::string::npos) << r.out;  // one client: the table is as it was
  std::ifstream jf(json);
  const auto j = nlohmann::json::parse(jf);
  for (const char* k : {"clients", "fairness", "fps_processed_total", "p95_ms_max"})  // nor is the JSON
    EXPECT_FALSE(j.contains(k)) << k;
  EXPECT_EQ(j["frames_offered"].get<int>(), 24);
  EXPECT_EQ(j["frames_processed"].get<int>() + j["frames_dropped"].get<int>(), 24);
  EXPECT_EQ(j["reconnects"].get<int>(), 0);
  EXPECT_NE(j["server"].get<std::string>().find("in-process"), std::string::npos);
  // What the worker runs (InitOk.providers), in the JSON and on the report's `worker` line.
  ASSERT_EQ(j["providers"].size(), 2u) << j.dump();
  const auto conv = j["providers"][1].get<std::string>();
  EXPECT_NE(r.out.find("\nworker    " + j["providers"][0].get<std::string>() + "; " + conv + "\n"),
            std::string::npos)
      << r.out;
  std::ifstream df(dets);
  int lines = 0;
  for (std::string line; std::getline(df, line); ++lines) {
    const auto d = nlohmann::json::parse(line);
    EXPECT_TRUE(d.contains("frame_id") && d.contains("latency_ms") && d.contains("detections"));
  }
  EXPECT_EQ(lines, j["frames_processed"].get<int>());
  const auto& cm = j["client_metrics"];
  EXPECT_EQ(cm["ai_init_ok_total"].get<int>(), 1);
  EXPECT_EQ(cm["ai_frames_sent_total"].get<int>() + cm["ai_drops_latestwins_total"].get<int>(), 24);
  EXPECT_GT(cm["ai_detections_total"].get<int>(), 0);
  EXPECT_EQ(cm["ai_result_latency_ms"]["count"].get<int>(), j["frames_processed"].get<int>());
  EXPECT_EQ(run("replay /nonexistent.aitwrec").exit_code, 2);
  // An image directory is recorded on the fly (640x480).
  const auto dir =
      run("replay " + kShared + "/datasets/images --model " + kShared + "/models/yolo11n.onnx --fps 4");
  EXPECT_EQ(dir.exit_code, 0) << dir.err;
  EXPECT_NE(dir.out.find("offered 2, processed 2"), std::string::npos) << dir.out;
  fs::remove(rec);
  fs::remove(json);
  fs::remove(dets);
}

// --clients N: N sessions on one in-process worker. Mechanism only (no timing): every client is served,
// its counts add up, every result it got is one of its own frames, and the totals are the sum of the clients.
TEST(CliReplay, ConcurrentClientsEachGetTheirOwnResults) {
  const std::string tag = std::to_string(getpid());
  const fs::path rec = fs::temp_directory_path() / ("aitw_rpn_" + tag + ".aitwrec");
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 2 --out " + rec.string()).exit_code, 0);
  const fs::path json = fs::temp_directory_path() / ("aitw_rpn_" + tag + ".json");
  const fs::path dets = fs::temp_directory_path() / ("aitw_rpn_" + tag + ".jsonl");
  constexpr int kClients = 3, kOffered = 24;  // 12 fps for 2 s each
  const auto r =
      run("replay " + rec.string() + " --model " + kShared + "/models/yolo11n.onnx --clients 3 --fps 12" +
          " --duration 2 --json " + json.string() + " --detections " + dets.string() +
          " --gate 'clients>=3,fps_processed_min>0,fairness>0,fps_processed_total>0,p95_ms_max>0'");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("3 concurrent sessions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nfairness "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gate ok: fairness"), std::string::npos) << r.out;
  std::ifstream jf(json);
  const auto j = nlohmann::json::parse(jf);
  for (const char* k :
       {"frames_offered", "frames_processed", "frames_dropped", "frame_errors", "drop_pct", "fps_processed",
        "e2e_ms", "stages_ms", "client_metrics", "clients", "fairness", "fps_processed_total",
        "fps_processed_min", "fps_processed_max", "p95_ms_max", "drop_pct_max"})
    EXPECT_TRUE(j.contains(k)) << k;
  ASSERT_EQ(j["clients"].size(), static_cast<std::size_t>(kClients));
  std::uint64_t offered = 0, processed = 0, dropped = 0, errors = 0, min_p = UINT64_MAX, max_p = 0;
  double worst_p95 = 0;
  for (int c = 0; c < kClients; ++c) {
    const auto& e = j["clients"][c];
    SCOPED_TRACE("client " + std::to_string(c));
    EXPECT_EQ(e["client"].get<int>(), c);
    for (const char* k : {"frames_offered", "frames_processed", "frames_dropped", "frame_errors", "drop_pct",
                          "fps_processed", "e2e_ms", "reconnects", "frames_lost_on_disconnect"})
      EXPECT_TRUE(e.contains(k)) << k;
    const auto o = e["frames_offered"].get<std::uint64_t>(), p = e["frames_processed"].get<std::uint64_t>(),
               d = e["frames_dropped"].get<std::uint64_t>(), x = e["frame_errors"].get<std::uint64_t>();
    EXPECT_EQ(o, static_cast<std::uint64_t>(kOffered));
    EXPECT_GT(p, 0u);  // the last frame offered always waits, and the run drains it: nobody gets nothing
    EXPECT_EQ(x, 0u);
    EXPECT_EQ(e["frames_lost_on_disconnect"].get<int>(), 0);
    EXPECT_EQ(o, p + d + x);  // every frame offered is accounted for, once
    EXPECT_GT(e["e2e_ms"]["p95"].get<double>(), 0);
    EXPECT_LE(e["e2e_ms"]["p50"].get<double>(), e["e2e_ms"]["max"].get<double>());
    offered += o, processed += p, dropped += d, errors += x;
    min_p = std::min(min_p, p), max_p = std::max(max_p, p);
    worst_p95 = std::max(worst_p95, e["e2e_ms"]["p95"].get<double>());
  }
  EXPECT_EQ(j["frames_offered"].get<std::uint64_t>(), offered);
  EXPECT_EQ(j["frames_processed"].get<std::uint64_t>(), processed);
  EXPECT_EQ(j["frames_dropped"].get<std::uint64_t>(), dropped);
  EXPECT_EQ(j["frame_errors"].get<std::uint64_t>(), errors);
  EXPECT_DOUBLE_EQ(j["fps_processed_total"].get<double>(), j["fps_processed"].get<double>());
  EXPECT_NEAR(j["fairness"].get<double>(), static_cast<double>(min_p) / static_cast<double>(max_p), 0.001);
  EXPECT_DOUBLE_EQ(j["p95_ms_max"].get<double>(), worst_p95);
  const auto& cm = j["client_metrics"];
  EXPECT_EQ(cm["ai_init_ok_total"].get<int>(), kClients);  // each client its own session
  EXPECT_EQ(
      cm["ai_frames_sent_total"].get<std::uint64_t>() + cm["ai_drops_latestwins_total"].get<std::uint64_t>(),
      offered);
  EXPECT_EQ(cm["ai_result_latency_ms"]["count"].get<std::uint64_t>(), processed);
  // Detections: one line per result, tagged with its client; frame ids are n * 3 + client, so a result
  // delivered to the wrong session would show.
  std::map<int, std::set<std::uint64_t>> ids;
  std::ifstream df(dets);
  for (std::string line; std::getline(df, line);) {
    const auto d = nlohmann::json::parse(line);
    const int c = d["client"].get<int>();
    const auto id = d["frame_id"].get<std::uint64_t>();
    EXPECT_EQ(id % kClients, static_cast<std::uint64_t>(c)) << line;
    EXPECT_LT(id / kClients, static_cast<std::uint64_t>(kOffered)) << line;
    EXPECT_TRUE(ids[c].insert(id).second) << "result twice: " << line;
  }
  for (int c = 0; c < kClients; ++c)
    EXPECT_EQ(ids[c].size(), j["clients"][c]["frames_processed"].get<std::size_t>()) << "client " << c;

  // A gate on a cross-client figure can fail, and says which.
  const auto missed = run("replay " + rec.string() + " --model " + kShared +
                          "/models/yolo11n.onnx --clients 2 --duration 1 --gate 'p95_ms_max<0.001'");
  EXPECT_EQ(missed.exit_code, 1) << missed.err << missed.out;
  EXPECT_NE(missed.out.find("GATE FAILED: p95_ms_max"), std::string::npos) << missed.out;
  EXPECT_NE(run("replay " + rec.string() + " --clients 0").exit_code, 0);
  fs::remove(rec);
  fs::remove(json);
  fs::remove(dets);
}

TEST(CliServe, ServesReplayAndDrainsOnSigterm) {
  const int port = aitw::testing::free_port();  // a PID-derived port collided with an ephemeral one
  const fs::path log = fs::temp_directory_path() / ("aitw_serve_" + std::to_string(getpid()) + ".log");
  const std::string cmd = "AITW_MODEL_DIR=" + kShared + "/models " + kAitw +
                          " serve --listen 127.0.0.1:" + std::to_string(port) + " > " + log.string() +
                          " 2>&1 & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  int pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &pid), 1);
  pclose(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const fs::path rec = fs::temp_directory_path() / ("aitw_sv_" + std::to_string(getpid()) + ".aitwrec");
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 1 --out " + rec.string()).exit_code, 0);
  const auto r = run("replay " + rec.string() + " --server 127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  // Every frame is answered; on a loaded machine latest-wins may drop some (counted), never all.
  EXPECT_NE(r.out.find("offered 12, processed "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("processed 0,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("errors 0"), std::string::npos) << r.out;
  // Two clients on the running worker: both are served.
  const auto two = run("replay " + rec.string() + " --server 127.0.0.1:" + std::to_string(port) +
                       " --clients 2 --gate 'clients>=2,fps_processed_min>0'");
  EXPECT_EQ(two.exit_code, 0) << two.err << two.out;
  EXPECT_NE(two.out.find("offered 24, processed "), std::string::npos) << two.out;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(kill(pid, 0), 0) << "aitw serve did not exit after SIGTERM";
  (void)status;
  std::ifstream lf(log);
  std::stringstream ls;
  ls << lf.rdbuf();
  EXPECT_NE(ls.str().find("SIGTERM"), std::string::npos) << ls.str();
  EXPECT_NE(ls.str().find("stopped"), std::string::npos) << ls.str();
  fs::remove(rec);
  fs::remove(log);
}

TEST(CliRegistry, PushListShowPullRmAndDetectByReference) {
  const fs::path root = fs::temp_directory_path() / ("aitw_cli_reg_" + std::to_string(getpid()));
  fs::remove_all(root);
  const std::string env =
      "AITW_REGISTRY=file://" + (root / "store").string() + " XDG_CACHE_HOME=" + (root / "cache").string();
  auto push = run("registry push " + kShared + "/models/yolo11n.onnx --name det --label site=gate-3", env);
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_NE(push.out.find("pushed det@1"), std::string::npos) << push.out;
  ASSERT_EQ(run("registry push " + kShared + "/models/yolov8n.onnx --name det", env).exit_code, 0);
  const auto refused = run("registry push " + kBus + " --name bus", env);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("refusing to push"), std::string::npos) << refused.err;

  const auto list = run("registry list --json", env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const auto rows = nlohmann::json::parse(list.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[1]["latest"].get<bool>());
  const auto show = run("registry show det@1", env);
  EXPECT_EQ(nlohmann::json::parse(show.out)["labels"]["site"], "gate-3");
  const fs::path out = root / "pulled.onnx";
  ASSERT_EQ(run("registry pull det@2 --out " + out.string(), env).exit_code, 0);
  EXPECT_EQ(fs::file_size(out), fs::file_size(kShared + "/models/yolov8n.onnx"));

  // --model accepts name@version; the bytes come through the verified cache.
  const auto det = run("detect --model det@1 " + kBus, env);
  ASSERT_EQ(det.exit_code, 0) << det.err;
  EXPECT_EQ(det.lines[0]["model"]["sha256"],
            "72063619bbcdbd89a3d8398c2e99a533f51f2d0d48f788c7475157697b7baa8b");
  EXPECT_EQ(count_classes(det.lines[0])["person"], 4);
  const auto missing = run("detect --model det@7 " + kBus, env);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("det@7"), std::string::npos) << missing.err;

  EXPECT_EQ(run("registry rm det@2", env).exit_code, 0);
  EXPECT_NE(run("registry show det", env).out.find("\"version\": 1"), std::string::npos);
  const auto bad_uri = run("registry list --registry s3://Bad_Bucket/x", env);
  EXPECT_EQ(bad_uri.exit_code, 2);
  EXPECT_NE(bad_uri.err.find("bad bucket name"), std::string::npos) << bad_uri.err;
  fs::remove_all(root);
}

// `aitw serve --registry URI` resolves Init.model "yolo11n@1" from each backend: the embedded file store
// and a real S3-protocol server (s3rver on loopback). No model folder is reachable: only the registry.
TEST(CliRegistry, ServeResolvesNameAtVersionFromEachBackend) {
  aitw::registry::testing::S3rver s3;
  const fs::path root = fs::temp_directory_path() / ("aitw_cli_serve_reg_" + std::to_string(getpid()));
  fs::remove_all(root);
  const fs::path rec = root / "bus.aitwrec";
  fs::create_directories(root);
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 1 --out " + rec.string()).exit_code, 0);
  int n = 0;
  for (const std::string& uri :
       {"file://" + (root / "store").string(), s3.uri("cli-" + std::to_string(getpid()))}) {
    SCOPED_TRACE(uri);
    const std::string env = std::string("AWS_ACCESS_KEY_ID=") + s3.kAccessKey +
                            " AWS_SECRET_ACCESS_KEY=" + s3.kSecretKey +
                            " XDG_CACHE_HOME=" + (root / ("cache" + std::to_string(n))).string() +
                            " AITW_MODEL_DIR=" + (root / "no-models").string();
    const auto push =
        run("registry push " + kShared + "/models/yolo11n.onnx --name yolo11n --registry '" + uri + "'", env);
    ASSERT_EQ(push.exit_code, 0) << push.err;
    EXPECT_NE(push.out.find("pushed yolo11n@1"), std::string::npos) << push.out;
    // show / pull / rm through the CLI on this backend too (a second version, then removed).
    ASSERT_EQ(
        run("registry push " + kShared + "/models/yolov8n.onnx --name yolo11n --registry '" + uri + "'", env)
            .exit_code,
        0);
    const auto show = run("registry show yolo11n@2 --registry '" + uri + "'", env);
    ASSERT_EQ(show.exit_code, 0) << show.err;
    EXPECT_EQ(nlohmann::json::parse(show.out)["source"], "yolov8n.onnx");
    const fs::path pulled = root / ("pulled" + std::to_string(n) + ".onnx");
    ASSERT_EQ(
        run("registry pull yolo11n@2 --out " + pulled.string() + " --registry '" + uri + "'", env).exit_code,
        0);
    EXPECT_EQ(fs::file_size(pulled), fs::file_size(kShared + "/models/yolov8n.onnx"));
    ASSERT_EQ(run("registry rm yolo11n@2 --registry '" + uri + "'", env).exit_code, 0);
    const auto gone = run("registry show yolo11n@2 --registry '" + uri + "'", env);
    EXPECT_EQ(gone.exit_code, 2);
    EXPECT_NE(gone.err.find("unknown version 'yolo11n@2'"), std::string::npos) << gone.err;
    const auto list = run("registry list --json --registry '" + uri + "'", env);
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_EQ(nlohmann::json::parse(list.out).size(), 1u);

    const int port = aitw::testing::free_port();
    const fs::path log = root / ("serve" + std::to_string(n) + ".log");
    FILE* p = popen((env + " " + kAitw + " serve --listen 127.0.0.1:" + std::to_string(port) +
                     " --registry '" + uri + "' > " + log.string() + " 2>&1 & echo $!")
                        .c_str(),
                    "r");
    int pid = 0;
    ASSERT_EQ(fscanf(p, "%d", &pid), 1);
    pclose(p);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto r =
        run("replay " + rec.string() + " --model yolo11n@1 --server 127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    // Every frame is answered; under a loaded machine latest-wins may drop some, never all.
    EXPECT_NE(r.out.find("offered 12, processed "), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("processed 0,"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("errors 0"), std::string::npos) << r.out;
    const auto bad =
        run("replay " + rec.string() + " --model yolo11n@2 --server 127.0.0.1:" + std::to_string(port));
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE((bad.err + bad.out).find("yolo11n@2"), std::string::npos) << bad.err << bad.out;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream lf(log);
    std::stringstream ls;
    ls << lf.rdbuf();
    EXPECT_NE(ls.str().find("model yolo11n@1 -> yolo11n@1 sha256 72063619bbcd"), std::string::npos)
        << ls.str();
    ++n;
  }
  fs::remove_all(root);
}

// `--auth-token-file`: replay without the token is refused at Init (and says so at once), with it served;
// the token never reaches the log. `--model-dir`: an Init.model path outside it is refused.
TEST(CliServe, AuthTokenFileAndModelDir) {
  const fs::path root = fs::temp_directory_path() / ("aitw_cli_auth_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::ofstream(root / "token") << "  tok-9f2c1e77b0\n";
  fs::permissions(root / "token", fs::perms::owner_read | fs::perms::owner_write);
  std::ofstream(root / "wrong") << "tok-wrong\n";
  const fs::path rec = root / "bus.aitwrec";
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 1 --out " + rec.string()).exit_code, 0);
  const int port = aitw::testing::free_port();
  const fs::path log = root / "serve.log";
  FILE* p = popen(("AITW_MODEL_DIR=" + kShared + "/models " + kAitw + " serve --listen 127.0.0.1:" +
                   std::to_string(port) + " --auth-token-file " + (root / "token").string() +
                   " --model-dir " + kShared + "/models > " + log.string() + " 2>&1 & echo $!")
                      .c_str(),
                  "r");
  int pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &pid), 1);
  pclose(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string server = " --server 127.0.0.1:" + std::to_string(port);
  // That the refusal ends the Init wait at once (not after its 30 s) is Client.RefusedInitEndsTheWait's,
  // without a clock.
  const auto none = run("replay " + rec.string() + server);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("authentication required"), std::string::npos) << none.err;
  const auto wrong =
      run("replay " + rec.string() + server + " --auth-token-file " + (root / "wrong").string());
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("wrong auth token"), std::string::npos) << wrong.err;
  const auto ok = run("replay " + rec.string() + server + " --auth-token-file " + (root / "token").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const auto outside = run("replay " + rec.string() + server + " --auth-token-file " +
                           (root / "token").string() + " --model " + (root / "token").string());
  EXPECT_EQ(outside.exit_code, 2);
  EXPECT_NE(outside.err.find("outside the allowed model directories"), std::string::npos) << outside.err;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::ifstream lf(log);
  std::stringstream ls;
  ls << lf.rdbuf();
  EXPECT_NE(ls.str().find("auth"), std::string::npos) << ls.str();
  EXPECT_EQ(ls.str().find("tok-"), std::string::npos) << ls.str();  // neither token is ever logged
  EXPECT_EQ(run("serve --auth-token-file /nonexistent-token").exit_code, 2);
  fs::remove_all(root);
}

TEST(CliReplay, UnwritableJsonIsAnError) {
  const fs::path rec = fs::temp_directory_path() / ("aitw_rpj_" + std::to_string(getpid()) + ".aitwrec");
  ASSERT_EQ(run("record --pan --from " + kBus + " --fps 12 --duration 1 --out " + rec.string()).exit_code, 0);
  const auto r = run("replay " + rec.string() + " --model " + kShared +
                     "/models/yolo11n.onnx --json /nonexistent-dir/report.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot write /nonexistent-dir/report.json"), std::string::npos) << r.err;
  fs::remove(rec);
}
