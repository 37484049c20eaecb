// `aitw detect` as a user runs it: real process, real files, exit codes and output lines.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kAitw = AITW_BINARY;
const std::string kBus = kShared + "/datasets/images/bus.jpg";
const std::string kZidane = kShared + "/datasets/images/zidane.jpg";

struct Run {
  int exit_code = -1;
  std::string out, err;
  std::vector<nlohmann::json> lines;
};

Run run(const std::string& args, const std::string& env = "") {
  const fs::path dir = fs::temp_directory_path() / ("aitw_cli_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string err_file = (dir / "stderr.txt").string();
  const std::string cmd = env + " " + kAitw + " " + args + " 2>" + err_file;
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream ef(err_file);
  std::stringstream ss;
  ss << ef.rdbuf();
  r.err = ss.str();
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') r.lines.push_back(nlohmann::json::parse(line));
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
  EXPECT_NE(run("detect").exit_code, 0);  // no image
  const auto help = run("detect --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--annotate"), std::string::npos);
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
  for (const char* n : {"preprocess_640x480_fresh", "preprocess_1280x720_reused", "decode_nms_crowd2000",
                        "forward_yolo11n_480x640"})
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
}
