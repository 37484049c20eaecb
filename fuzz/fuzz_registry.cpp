// What the registry reads from a store it does not control: manifests (JSON) through the public API, and
// S3's ListObjectsV2 / error XML bodies. The store is in memory (the Store interface over a std::map), so
// every execution is deterministic and touches no network; only resolve() writes, to a private cache
// folder that is emptied after each input. A manifest that resolves is resolved again with the store
// down, and must then come from that cache.
//
// The input is used as: the XML body for parse_list_objects_v2 and parse_error; the manifest
// models/m/1.json; and the `latest` pointer of another name. Every error must be a RegistryError (a
// manifest is data from the store: a malformed one is the store's fault, reported as such).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "aitw/base/log.hpp"
#include "aitw/base/sha256.hpp"
#include "aitw/model/onnx_model.hpp"
#include "aitw/registry/registry.hpp"
#include "fuzz_common.hpp"
#include "s3_xml.hpp"

namespace {

namespace reg = aitw::registry;

class MemoryStore : public reg::Store {
 public:
  std::map<std::string, std::string> objects;
  bool down = false;  // every call fails as unreachable (the store's server is gone)
  std::string describe() const override { return "mem://fuzz"; }
  void put(const std::string& key, const std::string& bytes) override {
    check();
    objects[key] = bytes;
  }
  std::optional<std::string> get(const std::string& key) override {
    check();
    auto it = objects.find(key);
    if (it == objects.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> list(const std::string& prefix) override {
    check();
    std::vector<std::string> keys;
    for (auto it = objects.lower_bound(prefix); it != objects.end() && it->first.rfind(prefix, 0) == 0; ++it)
      keys.push_back(it->first);
    return keys;
  }
  void remove(const std::string& key) override {
    check();
    objects.erase(key);
  }

 private:
  void check() const {
    if (down) throw reg::RegistryError("mem://fuzz: unreachable", reg::RegistryError::Kind::Unreachable);
  }
};

// resolve()'s cache: created by resolve() as it writes, removed after every input (libFuzzer may end the
// process without running exit handlers, so nothing is left to clean up at exit).
const std::filesystem::path& cache_dir() {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("aitw_fuzz_registry_" + std::to_string(getpid()));
  return dir;
}

void fuzz_xml(std::string_view xml) {
  try {
    const auto page = reg::s3::parse_list_objects_v2(xml);
    AITW_FUZZ_CHECK(!page.truncated || !page.next_token.empty());
  } catch (const reg::RegistryError&) {
  }
  const auto e = reg::s3::parse_error(xml);  // never throws
  AITW_FUZZ_CHECK(e.code.size() <= xml.size() && e.message.size() <= xml.size());
}

void fuzz_manifest(const std::string& text) {
  auto owned = std::make_unique<MemoryStore>();
  MemoryStore& store = *owned;
  const std::string blob(aitw::fuzz::kRegistryBlob);
  store.put("blobs/sha256/" + aitw::sha256_hex(blob) + ".onnx", blob);
  store.put("models/m/1.json", text);
  store.put("models/m/latest", "1");
  store.put("models/p/latest", text);  // a corrupt (or odd) latest pointer
  reg::Registry registry(std::move(owned));

  try {
    registry.manifest({"p", std::nullopt});
  } catch (const reg::RegistryError&) {
  }

  std::optional<nlohmann::json> m;
  try {
    m = registry.manifest({"m", 1});
  } catch (const reg::RegistryError&) {
    return;
  }
  AITW_FUZZ_CHECK(m->contains("sha256") && (*m)["sha256"].is_string());
  const auto latest = registry.manifest({"m", std::nullopt});
  AITW_FUZZ_CHECK(latest == *m);
  try {
    const std::string bytes = registry.fetch(*m);
    AITW_FUZZ_CHECK(bytes == blob);
  } catch (const reg::RegistryError&) {
  }
  std::error_code ec;
  try {
    const auto r = reg::resolve(registry, {"m", std::nullopt}, cache_dir().string());
    AITW_FUZZ_CHECK(!r.from_cache_only && r.manifest == *m);
    // Resolved once, it is served from the cache while the store is down.
    store.down = true;
    const auto cached = reg::resolve(registry, {"m", std::nullopt}, cache_dir().string());
    store.down = false;
    AITW_FUZZ_CHECK(cached.from_cache_only && cached.manifest == *m && cached.path == r.path);
  } catch (const reg::RegistryError&) {
    store.down = false;
  }
  std::filesystem::remove_all(cache_dir(), ec);
  try {
    registry.remove("m", 1);
    AITW_FUZZ_CHECK(!store.get("models/m/1.json"));
    AITW_FUZZ_CHECK(!store.get("models/m/latest"));
  } catch (const reg::RegistryError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  aitw::set_log_level(aitw::LogLevel::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz_xml(text);
  fuzz_manifest(text);
  if (const auto ref = reg::parse_ref(text)) AITW_FUZZ_CHECK(!ref->name.empty());
  return 0;
}
