#include "aitw/registry/registry.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "aitw/base/log.hpp"
#include "aitw/base/read_file.hpp"
#include "aitw/base/sha256.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/model/onnx_model.hpp"
#include "mongo_store.hpp"
#include "s3_store.hpp"

namespace aitw::registry {
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  try {
    return read_file_bytes(p).value_or(std::string());
  } catch (const std::runtime_error&) {
    return {};
  }
}

// Written to a unique temporary name beside the target, then renamed over it: readers see the old object
// or the new one, never half of one.
void write_atomically(const fs::path& target, const std::string& bytes, const std::string& what) {
  static std::atomic<unsigned> counter{0};
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  const fs::path tmp = target.string() + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (f) f.close();  // the last buffered bytes can fail here too
    if (!f) {
      const int err = errno;  // ENOSPC, EROFS, EACCES, EDQUOT... (what the failing call left)
      fs::remove(tmp, ec);    // no partial file left behind to fill the disk further
      throw RegistryError(what + ": cannot write " + target.string() + ": " +
                          (err ? std::strerror(err) : "write failed (read-only or full?)"));
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw RegistryError(what + ": cannot write " + target.string() + ": " + ec.message());
  }
}

// write_atomically's temporary names: TARGET.tmp.PID.N (a model may well be called x.tmp.y).
const std::regex& temp_suffix() {
  static const std::regex r(R"(\.tmp\.[0-9]+\.[0-9]+$)");
  return r;
}

bool valid_key(const std::string& key) {
  return !key.empty() && key[0] != '/' && key.find("..") == std::string::npos &&
         key.find('\\') == std::string::npos;
}

class FileStore : public Store {
 public:
  explicit FileStore(fs::path root) : root_(std::move(root)) {}
  std::string describe() const override { return "file://" + root_.string(); }

  void put(const std::string& key, const std::string& bytes) override {
    check(key);
    write_atomically(root_ / key, bytes, describe());
  }
  std::optional<std::string> get(const std::string& key) override {
    check(key);
    std::error_code ec;
    if (!fs::is_regular_file(root_ / key, ec)) return std::nullopt;
    std::optional<std::string> bytes;
    try {
      bytes = read_file_bytes(root_ / key);
    } catch (const std::runtime_error& e) {
      throw RegistryError(describe() + ": cannot read " + key + " (" + e.what() + ")");
    }
    if (!bytes) throw RegistryError(describe() + ": cannot read " + key + " (access denied?)");
    return *bytes;
  }
  std::vector<std::string> list(const std::string& prefix) override {
    std::vector<std::string> keys;
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) return keys;
    for (auto it = fs::recursive_directory_iterator(root_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      const std::string key = fs::relative(it->path(), root_).generic_string();
      if (key.rfind(prefix, 0) == 0 && !std::regex_search(key, temp_suffix())) keys.push_back(key);
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  void remove(const std::string& key) override {
    check(key);
    std::error_code ec;
    fs::remove(root_ / key, ec);
    if (ec) throw RegistryError(describe() + ": cannot remove " + key + ": " + ec.message());
  }

 private:
  void check(const std::string& key) const {
    if (!valid_key(key)) throw RegistryError(describe() + ": invalid key '" + key + "'");
  }
  fs::path root_;
};

std::string manifest_key(const std::string& name, std::int64_t v) {
  return "models/" + name + "/" + std::to_string(v) + ".json";
}
std::string latest_key(const std::string& name) {
  return "models/" + name + "/latest";
}
std::string blob_key(const std::string& sha) {
  return "blobs/sha256/" + sha + ".onnx";
}

std::string home_dir(const char* xdg, const char* fallback) {
  if (const char* v = std::getenv(xdg); v && *v) return v;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/" + fallback;
  // Never a shared folder such as /tmp (another user could plant models there): the account's home.
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir && *pw->pw_dir)
    return std::string(pw->pw_dir) + "/" + fallback;
  throw RegistryError(std::string("no home directory: set HOME or ") + xdg);
}

}  // namespace

std::unique_ptr<Store> make_file_store(const std::string& root) {
  return std::make_unique<FileStore>(root);
}

std::unique_ptr<Store> open_store(const std::string& uri) {
  if (uri.rfind("file://", 0) == 0) {
    const std::string path = uri.substr(7);
    if (path.empty() || path[0] != '/')
      throw RegistryError("registry '" + uri + "': expected file:///absolute/path");
    return make_file_store(path);
  }
  if (uri.rfind("s3://", 0) == 0)
    return std::make_unique<s3::S3Store>(s3::parse_uri(uri), s3::credentials_from_env());
  if (uri.rfind("mongodb://", 0) == 0) return make_mongo_store(uri);
  throw RegistryError(
      "registry '" + uri +
      "': unknown scheme (expected file:///path, s3://bucket/prefix or mongodb://HOST:PORT/DB?blobs=URI)");
}

std::string default_registry_uri() {
  if (const char* v = std::getenv("AITW_REGISTRY"); v && *v) return v;
  return "file://" + home_dir("XDG_DATA_HOME", ".local/share") + "/aitw/registry";
}

std::optional<ModelRef> parse_ref(const std::string& text) {
  // A bare model name (model::is_model_path), except a file name: NAME.onnx is only looked up in folders.
  if (model::is_model_path(text) || text.ends_with(".onnx")) return std::nullopt;
  const auto at = text.find('@');
  ModelRef r{text.substr(0, at), std::nullopt};
  if (at != std::string::npos) r.version = std::stoll(text.substr(at + 1));  // 1 to 12 digits
  return r;
}

nlohmann::json Registry::push(const std::string& model_path, const std::string& name,
                              std::optional<std::int64_t> version,
                              const std::map<std::string, std::string>& labels) {
  if (model::is_model_path(name) || name.find('@') != std::string::npos)  // a bare name, without @version
    throw RegistryError("invalid model name '" + name + "' (letters, digits, . _ -; up to 128)");
  if (version && *version < 1) throw RegistryError("version must be a positive integer");
  std::optional<model::OnnxModel> model;
  try {
    model.emplace(model::OnnxModel::load(model_path));  // refuses what the adapter cannot run
  } catch (const model::ModelError& e) {
    throw RegistryError(std::string("refusing to push: ") + e.what());
  }
  const auto existing = versions(name);
  const std::int64_t highest = existing.empty() ? 0 : existing.back();
  const std::int64_t v = version ? *version : store_->allocate_version(name, highest).value_or(highest + 1);
  if (std::find(existing.begin(), existing.end(), v) != existing.end())
    throw RegistryError("model '" + name + "@" + std::to_string(v) + "' exists; versions are immutable",
                        RegistryError::Kind::Exists);
  const std::string bytes = read_file(model_path);
  const auto& md = model->metadata();
  const auto graph = model->adapt(md.native_input);
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& l : model->levels()) levels.push_back(l.stride);
  const auto now = std::chrono::system_clock::now();
  nlohmann::json manifest = {
      {"name", name},
      {"version", v},
      {"sha256", model->sha256()},
      {"size", bytes.size()},
      {"created_unix_s", std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()},
      {"source", fs::path(model_path).filename().string()},
      {"classes", md.class_names},
      {"imgsz", {md.native_input.height, md.native_input.width}},
      {"labels", labels},
      {"adapter",
       {{"head_strides", levels},
        {"reg_max", model->head_layout().reg_max},
        {"num_classes", model->head_layout().num_classes},
        {"attention", model->has_attention()},
        {"rewrite", graph.summary()}}}};
  // Blob, then manifest, then latest: every manifest that can be seen points at bytes that exist. A blob
  // already stored is reused only when its bytes still match their name.
  const auto stored = store_->get(blob_key(model->sha256()));
  if (!stored || aitw::sha256_hex(*stored) != model->sha256()) store_->put(blob_key(model->sha256()), bytes);
  store_->put(manifest_key(name, v), manifest.dump(2));
  if (existing.empty() || v > existing.back()) store_->put(latest_key(name), std::to_string(v));
  return manifest;
}

std::vector<std::string> Registry::names() {
  std::vector<std::string> out;
  for (const auto& k : store_->list("models/")) {
    const auto slash = k.find('/', 7);
    if (slash == std::string::npos) continue;
    std::string n = k.substr(7, slash - 7);
    if (out.empty() || out.back() != n) out.push_back(std::move(n));
  }
  return out;
}

std::vector<std::int64_t> Registry::versions(const std::string& name) {
  std::vector<std::int64_t> out;
  static const std::regex file(R"(([0-9]{1,12})\.json)");
  for (const auto& k : store_->list("models/" + name + "/")) {
    std::smatch m;
    const std::string base = k.substr(k.rfind('/') + 1);
    if (std::regex_match(base, m, file)) out.push_back(std::stoll(m[1]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json Registry::manifest(const ModelRef& ref) {
  std::int64_t v = 0;
  if (ref.version) {
    v = *ref.version;
  } else {
    const auto latest = store_->get(latest_key(ref.name));
    if (!latest)
      throw RegistryError("unknown model '" + ref.name + "' in " + store_->describe(),
                          RegistryError::Kind::NotFound);
    try {
      v = std::stoll(*latest);
    } catch (const std::exception&) {
      throw RegistryError("model '" + ref.name + "': corrupt latest pointer in " + store_->describe());
    }
  }
  const auto text = store_->get(manifest_key(ref.name, v));
  if (!text) {
    if (versions(ref.name).empty())
      throw RegistryError("unknown model '" + ref.name + "' in " + store_->describe(),
                          RegistryError::Kind::NotFound);
    throw RegistryError(
        "unknown version '" + ref.name + "@" + std::to_string(v) + "' in " + store_->describe(),
        RegistryError::Kind::NotFound);
  }
  try {
    auto j = nlohmann::json::parse(*text);
    static const std::regex sha(R"([0-9a-f]{64})");
    const bool ok = j.is_object() && j.contains("sha256") && j["sha256"].is_string() &&
                    std::regex_match(j["sha256"].get<std::string>(), sha) && j.contains("version") &&
                    j["version"].is_number_integer() && j["version"].get<std::int64_t>() == v &&
                    j.contains("name") && j["name"].is_string() && j["name"].get<std::string>() == ref.name;
    if (!ok)
      throw RegistryError(
          "manifest of '" + ref.name + "@" + std::to_string(v) +
              "' is invalid (needs name, integer version and a 64-hex sha256 matching its key)",
          RegistryError::Kind::Invalid);
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw RegistryError("manifest of '" + ref.name + "@" + std::to_string(v) +
                        "' is not valid JSON: " + e.what());
  }
}

std::string Registry::fetch(const nlohmann::json& m) {
  const std::string sha = m["sha256"].get<std::string>();
  const std::string what = m.value("name", "?") + "@" + std::to_string(m.value("version", 0));
  auto bytes = store_->get(blob_key(sha));
  if (!bytes)
    throw RegistryError("model '" + what + "': bytes missing from " + store_->describe(),
                        RegistryError::Kind::NotFound);
  const std::string got = aitw::sha256_hex(*bytes);
  if (got != sha)
    throw RegistryError("model '" + what + "': checksum mismatch (store has " + got.substr(0, 12) +
                            ", manifest says " + sha.substr(0, 12) + ")",
                        RegistryError::Kind::Checksum);
  return std::move(*bytes);
}

void Registry::remove(const std::string& name, std::int64_t version) {
  const auto m = manifest({name, version});
  store_->remove(manifest_key(name, version));
  const auto left = versions(name);
  if (left.empty())
    store_->remove(latest_key(name));
  else
    store_->put(latest_key(name), std::to_string(left.back()));
  // The blob goes when no other manifest uses it.
  const std::string sha = m["sha256"];
  for (const auto& n : names())
    for (auto v : versions(n))
      if (manifest({n, v})["sha256"] == sha) return;
  store_->remove(blob_key(sha));
}

std::string default_cache_dir() {
  return (fs::path(home_dir("XDG_CACHE_HOME", ".cache")) / "aitw/models").string();
}

std::string cached_model_path(Registry& registry, const nlohmann::json& manifest,
                              const std::string& cache_dir) {
  const fs::path dir = cache_dir.empty() ? fs::path(default_cache_dir()) : fs::path(cache_dir);
  const std::string sha = manifest["sha256"];
  const fs::path path = dir / (sha + ".onnx");
  std::error_code ec;
  if (fs::is_regular_file(path, ec) && aitw::sha256_hex(read_file(path)) == sha) return path.string();
  // Missing or corrupt: fetch (verified) and replace it.
  write_atomically(path, registry.fetch(manifest), "model cache " + dir.string());
  return path.string();
}

namespace {

// The manifests the cache has seen, so that a cached model can be served while the store is down.
fs::path cached_manifest_path(const fs::path& dir, const std::string& name, std::int64_t v) {
  return dir / "manifests" / name / (std::to_string(v) + ".json");
}

void remember_manifest(const fs::path& dir, const ModelRef& ref, const nlohmann::json& m) {
  try {
    const std::int64_t v = m["version"].get<std::int64_t>();
    write_atomically(cached_manifest_path(dir, ref.name, v), m.dump(2), "model cache " + dir.string());
    if (!ref.version)
      write_atomically(dir / "manifests" / ref.name / "latest", std::to_string(v),
                       "model cache " + dir.string());
  } catch (const std::exception& e) {
    // A read-only or full cache only costs the offline fallback.
    aitw::log_warn(std::string("model cache: cannot remember the manifest: ") + e.what());
  }
}

std::optional<Resolved> from_cache_only(const fs::path& dir, const ModelRef& ref) {
  std::int64_t v = 0;
  if (ref.version) {
    v = *ref.version;
  } else {
    const std::string latest = read_file(dir / "manifests" / ref.name / "latest");
    try {
      v = std::stoll(latest);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  const std::string text = read_file(cached_manifest_path(dir, ref.name, v));
  if (text.empty()) return std::nullopt;
  try {
    auto m = nlohmann::json::parse(text);
    const std::string sha = m.at("sha256").get<std::string>();
    static const std::regex hex64(R"([0-9a-f]{64})");
    if (!std::regex_match(sha, hex64) || !m.at("version").is_number_integer()) return std::nullopt;
    const fs::path path = dir / (sha + ".onnx");
    std::error_code ec;
    if (!fs::is_regular_file(path, ec) || aitw::sha256_hex(read_file(path)) != sha) return std::nullopt;
    return Resolved{std::move(m), path.string(), true};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Resolved resolve(Registry& registry, const ModelRef& ref, const std::string& cache_dir) {
  const fs::path dir = cache_dir.empty() ? fs::path(default_cache_dir()) : fs::path(cache_dir);
  std::string what = ref.name;
  if (ref.version) what += '@' + std::to_string(*ref.version);
  try {
    auto m = registry.manifest(ref);
    std::string path = cached_model_path(registry, m, dir.string());
    // Only once the bytes are cached: a `latest` remembered before a failed download would hide the
    // older version that is cached when the store goes down.
    remember_manifest(dir, ref, m);
    return Resolved{std::move(m), std::move(path), false};
  } catch (const RegistryError& e) {
    if (e.kind() != RegistryError::Kind::Unreachable) throw;
    if (auto cached = from_cache_only(dir, ref)) {
      aitw::log_warn("registry unreachable (" + std::string(e.what()) + "); serving the cached " + ref.name +
                     "@" + std::to_string(cached->manifest["version"].get<std::int64_t>()) + " (sha256 " +
                     cached->manifest["sha256"].get<std::string>().substr(0, 12) + ")");
      return std::move(*cached);
    }
    throw RegistryError(std::string(e.what()) + "; no cached copy of '" + what + "'",
                        RegistryError::Kind::Unreachable);
  }
}

}  // namespace aitw::registry
