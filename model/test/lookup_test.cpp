// Where a model reference leads: explicit paths as is; bare names in the --model-dir folders, then
// $AITW_MODEL_DIR, then $XDG_DATA_HOME/aitw/models, then the registry resolver; never the working directory.
#include "aitw/model/lookup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

namespace aitw::model {
namespace {

namespace fs = std::filesystem;

const std::string kShared = AITW_SHARED_DIR;

// Each test gets its own folders and environment, and leaves the process as it found it.
class ModelLookup : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("aitw_lookup_" + std::to_string(getpid()));
    fs::remove_all(root_);
    for (const char* d : {"cli1", "cli2", "env", "xdg/aitw/models", "home/.local/share/aitw/models", "cwd"})
      fs::create_directories(root_ / d);
    for (const char* var : {"AITW_MODEL_DIR", "XDG_DATA_HOME", "HOME"})
      if (const char* v = std::getenv(var)) saved_.emplace_back(var, v);
    setenv("AITW_MODEL_DIR", dir("env").c_str(), 1);
    setenv("XDG_DATA_HOME", dir("xdg").c_str(), 1);
    setenv("HOME", dir("home").c_str(), 1);
    set_model_dirs({dir("cli1"), dir("cli2")});
    cwd_ = fs::current_path();
  }
  void TearDown() override {
    fs::current_path(cwd_);
    set_model_dirs({});
    set_model_resolver(nullptr);
    for (const char* var : {"AITW_MODEL_DIR", "XDG_DATA_HOME", "HOME"}) unsetenv(var);
    for (const auto& [var, value] : saved_) setenv(var.c_str(), value.c_str(), 1);
    fs::remove_all(root_);
  }
  std::string dir(const std::string& d) const { return (root_ / d).string(); }
  std::string put(const std::string& d, const std::string& file) const {
    std::ofstream(root_ / d / file) << "model bytes";
    return (root_ / d / file).string();
  }

  fs::path root_, cwd_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(ModelLookup, BareNamesAndPaths) {
  for (const char* name : {"yolo11n", "yolov8n.onnx", "det@2", "a_b-c.d", "X9@123456789012"})
    EXPECT_FALSE(is_model_path(name)) << name;
  const std::string longest(128, 'a');
  EXPECT_FALSE(is_model_path(longest));
  for (const std::string& path : std::vector<std::string>{
           "./yolo11n.onnx", "/abs/yolo11n.onnx", "models/yolo11n", "../yolo11n", ".hidden", "", "det@",
           "det@x", "det@1234567890123", "det@2@3", "a b", "-x", "@2", longest + "a"})
    EXPECT_TRUE(is_model_path(path)) << path;
}

TEST_F(ModelLookup, FoldersInOrder) {
  EXPECT_EQ(model_search_dirs(),
            (std::vector<std::string>{dir("cli1"), dir("cli2"), dir("env"), dir("xdg") + "/aitw/models"}));
  for (const char* d : {"cli2", "env", "xdg/aitw/models"}) put(d, "det.onnx");
  EXPECT_EQ(resolve_model_path("det"), dir("cli2") + "/det.onnx");
  put("cli1", "det.onnx");
  EXPECT_EQ(resolve_model_path("det"), dir("cli1") + "/det.onnx");
  fs::remove(root_ / "cli1/det.onnx");
  fs::remove(root_ / "cli2/det.onnx");
  EXPECT_EQ(resolve_model_path("det.onnx"), dir("env") + "/det.onnx");  // NAME.onnx is a bare name too
  fs::remove(root_ / "env/det.onnx");
  EXPECT_EQ(resolve_model_path("det"), dir("xdg") + "/aitw/models/det.onnx");
}

TEST_F(ModelLookup, XdgDataHomeDefaultsToTheHomeFolder) {
  unsetenv("XDG_DATA_HOME");
  unsetenv("AITW_MODEL_DIR");
  set_model_dirs({});
  EXPECT_EQ(model_search_dirs(), (std::vector<std::string>{dir("home") + "/.local/share/aitw/models"}));
  put("home/.local/share/aitw/models", "det.onnx");
  EXPECT_EQ(resolve_model_path("det"), dir("home") + "/.local/share/aitw/models/det.onnx");
}

TEST_F(ModelLookup, RegistryIsConsultedLast) {
  std::vector<std::string> asked;
  set_model_resolver([&](const std::string& ref) -> std::optional<std::string> {
    asked.push_back(ref);
    return "/registry/cache/" + ref + ".onnx";
  });
  put("env", "det.onnx");
  EXPECT_EQ(resolve_model_path("det"), dir("env") + "/det.onnx");
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(resolve_model_path("det@2"), "/registry/cache/det@2.onnx");
  EXPECT_EQ(asked, (std::vector<std::string>{"det@2"}));
  EXPECT_THROW(resolve_model_path("other", /*use_resolver=*/false), ModelError);
  EXPECT_EQ(asked.size(), 1u);
}

TEST_F(ModelLookup, ErrorNamesEveryPlaceItLookedAndHowToGetAModel) {
  set_model_resolver([](const std::string&) { return std::nullopt; });
  try {
    resolve_model_path("nosuch");
    FAIL();
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    for (const std::string& place : std::vector<std::string>{
             dir("cli1") + "/nosuch.onnx (--model-dir)", dir("cli2") + "/nosuch.onnx (--model-dir)",
             dir("env") + "/nosuch.onnx ($AITW_MODEL_DIR)",
             dir("xdg") + "/aitw/models/nosuch.onnx ($XDG_DATA_HOME/aitw/models)", "then the model registry"})
      EXPECT_NE(msg.find(place), std::string::npos) << place << " not in: " << msg;
    EXPECT_LT(msg.find("(--model-dir)"), msg.find("($AITW_MODEL_DIR)")) << msg;
    EXPECT_LT(msg.find("($XDG_DATA_HOME/aitw/models)"), msg.find("registry")) << msg;
    EXPECT_NE(msg.find("yolo export model=yolo11n.pt format=onnx opset=12"), std::string::npos) << msg;
    EXPECT_NE(msg.find("aitw registry push"), std::string::npos) << msg;
  }
}

TEST_F(ModelLookup, RegistryFailureAlsoSaysWhichFoldersWereTried) {
  set_model_resolver([](const std::string&) -> std::optional<std::string> {
    throw ModelError("registry: store unreachable: http://127.0.0.1:9");
  });
  try {
    resolve_model_path("det");
    FAIL();
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("registry: store unreachable: http://127.0.0.1:9", 0), 0u) << msg;
    EXPECT_NE(msg.find(dir("env") + "/det.onnx"), std::string::npos) << msg;
  }
}

TEST_F(ModelLookup, ExplicitPathsAreUsedAsIs) {
  std::vector<std::string> asked;
  set_model_resolver([&](const std::string& ref) -> std::optional<std::string> {
    asked.push_back(ref);
    return std::nullopt;
  });
  put("cli1", "det.onnx");
  const std::string other = put("cwd", "det.onnx");
  EXPECT_EQ(resolve_model_path(other), other);  // not the --model-dir copy of the same name
  fs::current_path(root_ / "cwd");
  EXPECT_EQ(resolve_model_path("./det.onnx"), "./det.onnx");
  EXPECT_THROW(resolve_model_path("./missing.onnx"), ModelError);
  EXPECT_THROW(resolve_model_path(dir("cwd") + "/missing.onnx"), ModelError);
  EXPECT_TRUE(asked.empty());  // a path never goes to the registry
}

TEST_F(ModelLookup, ABareNameNeverMeansAFileInTheWorkingDirectory) {
  put("cwd", "only-here.onnx");
  fs::current_path(root_ / "cwd");
  EXPECT_THROW(resolve_model_path("only-here.onnx"), ModelError);
  EXPECT_THROW(resolve_model_path("only-here"), ModelError);
}

TEST_F(ModelLookup, FindsTheSharedModelsThroughAitwModelDir) {
  set_model_dirs({});
  setenv("AITW_MODEL_DIR", (kShared + "/models").c_str(), 1);
  EXPECT_EQ(resolve_model_path("yolov8n"), kShared + "/models/yolov8n.onnx");
}

}  // namespace
}  // namespace aitw::model
