#pragma once
// Versioned model bundles in an object store. A bundle is the ONNX bytes under a content-addressed key
// plus a JSON manifest; each name has a `latest` pointer. Keys (the same layout on every backend):
//   blobs/sha256/<hex>.onnx          the model bytes
//   models/<name>/<version>.json     the manifest (immutable once published)
//   models/<name>/latest             the latest version number, as text
// Publishing writes the blob, then the manifest, then moves `latest`: a crash in between never leaves a
// manifest that points at missing bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aitw::registry {

// Every registry failure: one line naming the cause (unknown name, version exists, checksum mismatch,
// store unreachable with its endpoint, access denied).
class RegistryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An object store: the embedded local folder or S3/MinIO.
class Store {
 public:
  virtual ~Store() = default;
  virtual std::string describe() const = 0;  // for messages, e.g. "file:///var/lib/aitw/registry"
  virtual void put(const std::string& key, const std::string& bytes) = 0;  // atomic per object
  virtual std::optional<std::string> get(const std::string& key) = 0;      // nullopt = no such key
  virtual std::vector<std::string> list(const std::string& prefix) = 0;    // keys, sorted
  virtual void remove(const std::string& key) = 0;
};

// file:///path — objects are files below the folder, written to a temporary name and renamed.
std::unique_ptr<Store> make_file_store(const std::string& root);
// Opens a store from a URI: file:///path (s3:// is not built yet). Throws RegistryError.
std::unique_ptr<Store> open_store(const std::string& uri);
// The default URI: $AITW_REGISTRY, else file://$XDG_DATA_HOME/aitw/registry (~/.local/share/...).
std::string default_registry_uri();

struct ModelRef {
  std::string name;
  std::optional<std::int64_t> version;  // nullopt = latest
};
// Parses "name" or "name@version"; nullopt when the text is not a registry reference (e.g. a path).
std::optional<ModelRef> parse_ref(const std::string& text);

class Registry {
 public:
  explicit Registry(std::unique_ptr<Store> store) : store_(std::move(store)) {}

  // Validates the model with the adapter (refuses a non-detector), stores it, returns the manifest.
  nlohmann::json push(const std::string& model_path, const std::string& name,
                      std::optional<std::int64_t> version, const std::map<std::string, std::string>& labels);
  std::vector<std::string> names();
  std::vector<std::int64_t> versions(const std::string& name);
  nlohmann::json manifest(const ModelRef& ref);       // throws RegistryError for an unknown name/version
  std::string fetch(const nlohmann::json& manifest);  // the bytes, sha256-verified
  void remove(const std::string& name, std::int64_t version);
  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

// A verified local cache keyed by sha256 ($XDG_CACHE_HOME/aitw/models). Returns the path of a model file
// whose bytes match the manifest, fetching (again) when it is missing or corrupt.
std::string cached_model_path(Registry& registry, const nlohmann::json& manifest,
                              const std::string& cache_dir = "");

}  // namespace aitw::registry
