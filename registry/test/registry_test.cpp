#include "aitw/registry/registry.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aitw/pipeline/model_adapter.hpp"

namespace aitw::registry {
namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kYolo11 = kShared + "/models/yolo11n.onnx";
const std::string kYolov8 = kShared + "/models/yolov8n.onnx";

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("aitw_reg_" + tag + "_" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "expected RegistryError with '" << needle << "'";
  } catch (const RegistryError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Registry, PushVersionsLatestAndManifest) {
  TempDir dir("push");
  Registry reg(open_store("file://" + dir.path.string()));
  const auto m1 = reg.push(kYolo11, "det", std::nullopt, {{"site", "gate-3"}});
  EXPECT_EQ(m1["version"], 1);
  EXPECT_EQ(m1["sha256"], pipeline::sha256_hex([] {
              std::ifstream f(kYolo11, std::ios::binary);
              return std::string(std::istreambuf_iterator<char>(f), {});
            }()));
  EXPECT_EQ(m1["classes"].size(), 80u);
  EXPECT_EQ(m1["labels"]["site"], "gate-3");
  EXPECT_EQ(m1["adapter"]["head_strides"], (nlohmann::json{8, 16, 32}));
  EXPECT_TRUE(m1["adapter"]["attention"].get<bool>());
  const auto m2 = reg.push(kYolov8, "det", std::nullopt, {});
  EXPECT_EQ(m2["version"], 2);
  EXPECT_EQ(reg.versions("det"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(reg.manifest({"det", std::nullopt})["version"], 2);  // latest
  EXPECT_EQ(reg.manifest({"det", 1})["sha256"], m1["sha256"]);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"det"}));
  // The bytes come back verified.
  EXPECT_EQ(pipeline::sha256_hex(reg.fetch(m1)), m1["sha256"]);
}

TEST(Registry, VersionsAreImmutableAndNamesValidated) {
  TempDir dir("immut");
  Registry reg(open_store("file://" + dir.path.string()));
  reg.push(kYolo11, "det", 5, {});
  expect_error([&] { reg.push(kYolov8, "det", 5, {}); }, "exists");
  expect_error([&] { reg.push(kYolo11, "../evil", std::nullopt, {}); }, "invalid model name");
  expect_error([&] { reg.push(kYolo11, "det", 0, {}); }, "positive");
  EXPECT_EQ(reg.push(kYolo11, "det", std::nullopt, {})["version"], 6);
}

TEST(Registry, RefusesFilesTheAdapterCannotRun) {
  TempDir dir("refuse");
  Registry reg(open_store("file://" + dir.path.string()));
  expect_error([&] { reg.push(kShared + "/datasets/images/bus.jpg", "bus", std::nullopt, {}); },
               "refusing to push");
  EXPECT_TRUE(reg.names().empty());
}

TEST(Registry, UnknownNamesAndVersionsAreClearErrors) {
  TempDir dir("unknown");
  Registry reg(open_store("file://" + dir.path.string()));
  expect_error([&] { reg.manifest({"nope", std::nullopt}); }, "unknown model 'nope'");
  reg.push(kYolo11, "det", std::nullopt, {});
  expect_error([&] { reg.manifest({"det", 9}); }, "unknown version 'det@9'");
}

TEST(Registry, TamperedBlobIsRejectedByChecksum) {
  TempDir dir("tamper");
  Registry reg(open_store("file://" + dir.path.string()));
  const auto m = reg.push(kYolo11, "det", std::nullopt, {});
  const fs::path blob = dir.path / ("blobs/sha256/" + m["sha256"].get<std::string>() + ".onnx");
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('X');
  }
  expect_error([&] { reg.fetch(m); }, "checksum mismatch");
}

TEST(Registry, RemoveMovesLatestAndKeepsSharedBlobs) {
  TempDir dir("rm");
  Registry reg(open_store("file://" + dir.path.string()));
  const auto m1 = reg.push(kYolo11, "det", std::nullopt, {});
  reg.push(kYolo11, "det", std::nullopt, {});  // same bytes, version 2: one blob
  reg.remove("det", 2);
  EXPECT_EQ(reg.manifest({"det", std::nullopt})["version"], 1);
  EXPECT_NO_THROW(reg.fetch(m1));  // still used by det@1
  reg.remove("det", 1);
  EXPECT_TRUE(reg.names().empty());
  EXPECT_TRUE(reg.store().list("blobs/").empty());
  expect_error([&] { reg.remove("det", 1); }, "unknown");
}

TEST(Registry, ListsManyVersions) {
  TempDir dir("many");
  Registry reg(open_store("file://" + dir.path.string()));
  for (int i = 0; i < 40; ++i) reg.push(kYolov8, "v8", std::nullopt, {});
  const auto v = reg.versions("v8");
  ASSERT_EQ(v.size(), 40u);
  EXPECT_EQ(v.front(), 1);
  EXPECT_EQ(v.back(), 40);
  EXPECT_EQ(reg.store().list("blobs/").size(), 1u);  // content-addressed
}

TEST(Registry, CacheIsVerifiedAndRefetchedWhenCorrupt) {
  TempDir dir("cache"), cache("cachedir");
  Registry reg(open_store("file://" + dir.path.string()));
  const auto m = reg.push(kYolo11, "det", std::nullopt, {});
  const std::string path = cached_model_path(reg, m, cache.path.string());
  EXPECT_EQ(fs::path(path).filename().string(), m["sha256"].get<std::string>() + ".onnx");
  EXPECT_NO_THROW(pipeline::OnnxModel::load(path));
  std::ofstream(path, std::ios::trunc) << "corrupted";  // a damaged cache entry
  const std::string again = cached_model_path(reg, m, cache.path.string());
  EXPECT_EQ(again, path);
  EXPECT_NO_THROW(pipeline::OnnxModel::load(again));  // re-fetched
}

TEST(Registry, UrisAndReferences) {
  expect_error([] { open_store("file://relative/path"); }, "absolute");
  expect_error([] { open_store("s3://bucket/prefix"); }, "not built yet");
  expect_error([] { open_store("ftp://x"); }, "unknown scheme");
  auto r = parse_ref("yolo11n@3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "yolo11n");
  EXPECT_EQ(*r->version, 3);
  EXPECT_FALSE(parse_ref("yolo11n")->version);
  EXPECT_FALSE(parse_ref("../shared/models/yolo11n.onnx"));
  EXPECT_FALSE(parse_ref("model.onnx"));
  setenv("AITW_REGISTRY", "file:///srv/reg", 1);
  EXPECT_EQ(default_registry_uri(), "file:///srv/reg");
  unsetenv("AITW_REGISTRY");
}

}  // namespace aitw::registry
