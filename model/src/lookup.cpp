#include "aitw/model/lookup.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>

namespace aitw::model {
namespace fs = std::filesystem;

std::vector<std::string> model_search_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("AITW_MODEL_DIR"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back("models");
  dirs.emplace_back("../shared/models");
  return dirs;
}

namespace {
std::mutex g_resolver_mutex;
std::function<std::optional<std::string>(const std::string&)> g_resolver;
}  // namespace

void set_model_resolver(std::function<std::optional<std::string>(const std::string& spec)> resolver) {
  std::lock_guard<std::mutex> lock(g_resolver_mutex);
  g_resolver = std::move(resolver);
}

std::string resolve_model_path(const std::string& spec, bool use_resolver) {
  std::error_code ec;
  const bool looks_like_path = spec.find('/') != std::string::npos;
  // A bare name ("yolo11n", "det@2") is never a file in the working directory: registry, then folders.
  if ((looks_like_path || spec.ends_with(".onnx")) && fs::is_regular_file(spec, ec)) return spec;
  std::function<std::optional<std::string>(const std::string&)> resolver;
  if (use_resolver) {
    std::lock_guard<std::mutex> lock(g_resolver_mutex);
    resolver = g_resolver;
  }
  if (resolver)
    if (auto path = resolver(spec)) return *path;
  std::vector<std::string> tried;
  if (!looks_like_path) {
    const std::string file = spec.ends_with(".onnx") ? spec : spec + ".onnx";
    for (const auto& d : model_search_dirs()) {
      const fs::path p = fs::path(d) / file;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried.push_back(p.string());
    }
  } else {
    tried.push_back(spec);
  }
  std::string msg = "model '" + spec + "' not found; looked in: ";
  for (std::size_t i = 0; i < tried.size(); ++i) msg += (i ? ", " : "") + tried[i];
  msg +=
      ". Export one with `yolo export model=yolo11n.pt format=onnx opset=12` (Ultralytics) and place it "
      "there, or set AITW_MODEL_DIR to the folder that holds it (aitw downloads nothing)";
  throw ModelError(msg);
}

}  // namespace aitw::model
