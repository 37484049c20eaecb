#include "aitw/model/lookup.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <utility>

namespace aitw::model {
namespace fs = std::filesystem;

namespace {

std::mutex g_mutex;
std::vector<std::string> g_model_dirs;
std::function<std::optional<std::string>(const std::string&)> g_resolver;

bool ascii_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

struct SearchDir {
  std::string path;
  const char* source;  // how the user set it, for messages
};

// The data folder of the account (XDG base directories): never a shared folder such as /tmp, where another
// user could plant models.
std::string xdg_data_home() {
  if (const char* v = std::getenv("XDG_DATA_HOME"); v && *v) return v;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share";
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir && *pw->pw_dir)
    return std::string(pw->pw_dir) + "/.local/share";
  return "";
}

std::vector<SearchDir> search_dirs() {
  std::vector<SearchDir> dirs;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const auto& d : g_model_dirs) dirs.push_back({d, "--model-dir"});
  }
  if (const char* env = std::getenv("AITW_MODEL_DIR"); env && *env) dirs.push_back({env, "$AITW_MODEL_DIR"});
  if (const std::string data = xdg_data_home(); !data.empty())
    dirs.push_back({data + "/aitw/models", "$XDG_DATA_HOME/aitw/models"});
  return dirs;
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

constexpr const char* kHowToGetOne =
    "Export one with `yolo export model=yolo11n.pt format=onnx opset=12` (Ultralytics) and put it in a model "
    "folder (--model-dir DIR, AITW_MODEL_DIR, or $XDG_DATA_HOME/aitw/models), or publish it with `aitw "
    "registry "
    "push FILE --name NAME`; aitw downloads nothing from the internet";

}  // namespace

bool is_model_path(const std::string& ref) {
  const std::size_t at = ref.find('@');
  const std::string_view name = std::string_view(ref).substr(0, at);
  if (name.empty() || name.size() > 128 || !ascii_alnum(name[0])) return true;
  for (char c : name)
    if (!ascii_alnum(c) && c != '.' && c != '_' && c != '-') return true;
  if (at == std::string::npos) return false;
  const std::string_view version = std::string_view(ref).substr(at + 1);
  if (version.empty() || version.size() > 12) return true;
  for (char c : version)
    if (c < '0' || c > '9') return true;
  return false;
}

void set_model_dirs(std::vector<std::string> dirs) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_model_dirs = std::move(dirs);
}

std::vector<std::string> model_search_dirs() {
  std::vector<std::string> dirs;
  for (auto& d : search_dirs()) dirs.push_back(std::move(d.path));
  return dirs;
}

void set_model_resolver(std::function<std::optional<std::string>(const std::string& ref)> resolver) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_resolver = std::move(resolver);
}

bool has_model_resolver() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return static_cast<bool>(g_resolver);
}

std::string resolve_model_path(const std::string& ref, bool use_resolver) {
  std::error_code ec;
  if (is_model_path(ref)) {
    if (fs::is_regular_file(ref, ec)) return ref;
    throw ModelError("model '" + ref + "' not found (no such file). " + kHowToGetOne);
  }
  const std::string file = ref.ends_with(".onnx") ? ref : ref + ".onnx";
  std::vector<std::string> tried;
  for (const auto& d : search_dirs()) {
    const fs::path p = fs::path(d.path) / file;
    if (fs::is_regular_file(p, ec)) return p.string();
    tried.push_back(p.string() + " (" + d.source + ")");
  }
  const std::string folders = tried.empty() ? "no model folder (none is set)" : joined(tried);
  std::function<std::optional<std::string>(const std::string&)> resolver;
  if (use_resolver) {
    std::lock_guard<std::mutex> lock(g_mutex);
    resolver = g_resolver;
  }
  if (resolver) {
    try {
      if (auto path = resolver(ref)) return *path;
    } catch (const ModelError& e) {
      // The registry's reason (unreachable, checksum) comes first; the folders were tried before it.
      throw ModelError(std::string(e.what()) + "; not in the model folders either (looked in " + folders +
                       "). " + kHowToGetOne);
    }
  }
  throw ModelError("model '" + ref + "' not found; looked in " + folders +
                   (resolver ? ", then the model registry (no such model)" : "") + ". " + kHowToGetOne);
}

}  // namespace aitw::model
