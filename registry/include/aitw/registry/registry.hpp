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
// `kind` lets callers react: Unreachable (transport failure, 5xx, circuit open) falls back to the cache.
class RegistryError : public std::runtime_error {
 public:
  enum class Kind { Other, NotFound, Exists, Checksum, Unreachable, AccessDenied, NoBucket, Invalid };
  explicit RegistryError(const std::string& what, Kind kind = Kind::Other)
      : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
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
  // The next version of `name`, greater than `above`, allocated atomically by the store (MongoDB:
  // findAndModify on a counter), or nullopt when the store has no allocator (then the registry takes the
  // highest version listed + 1).
  virtual std::optional<std::int64_t> allocate_version(const std::string& /*name*/, std::int64_t /*above*/) {
    return std::nullopt;
  }
};

// file:///path — objects are files below the folder, written to a temporary name and renamed.
std::unique_ptr<Store> make_file_store(const std::string& root);
// Opens a store from a URI: file:///path or s3://bucket/prefix?endpoint=...&region=... (credentials from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), or mongodb://HOST:PORT/DB?blobs=URI
// (manifests and `latest` in MongoDB, the bytes in the file:// or s3:// store URI). Throws RegistryError.
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

// The local cache: $XDG_CACHE_HOME/aitw/models (~/.cache/aitw/models) unless `cache_dir` is given.
std::string default_cache_dir();

// A verified local cache keyed by sha256. Returns the path of a model file whose bytes match the manifest,
// fetching (again) when it is missing or corrupt.
std::string cached_model_path(Registry& registry, const nlohmann::json& manifest,
                              const std::string& cache_dir = "");

// What resolve() used: the manifest, the verified file, and whether the store was reachable.
struct Resolved {
  nlohmann::json manifest;
  std::string path;
  bool from_cache_only = false;  // store unreachable: manifest and bytes came from the cache
};
// name[@version] -> verified model file. Manifests seen are kept in the cache (manifests/NAME/V.json and
// the last `latest` seen), so that when the store is unreachable a model already cached is still served
// (and a warning says so). Throws RegistryError (Unreachable with "no cached copy" when neither works).
Resolved resolve(Registry& registry, const ModelRef& ref, const std::string& cache_dir = "");

}  // namespace aitw::registry
