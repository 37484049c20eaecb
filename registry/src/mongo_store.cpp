#include "mongo_store.hpp"

#include "aitw/mongodb/mongodb.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <regex>

namespace aitw::registry {
namespace {

using Doc = mongodb::Bson;
using mongodb::redact_uri;

// models/<name>/<version>.json and models/<name>/latest: the only metadata keys the Registry writes.
const std::regex kManifest(R"(models/(.+)/([0-9]{1,12})\.json)");
const std::regex kLatest(R"(models/(.+)/latest)");

Doc indexes_command(const char* collection, const char* field) {
  return Doc(BCON_NEW("createIndexes", BCON_UTF8(collection), "indexes", "[", "{", "key", "{", field,
                      BCON_INT32(1), "}", "name", BCON_UTF8((std::string(field) + "_unique").c_str()),
                      "unique", BCON_BOOL(true), "}", "]"));
}

class MongoStore : public Store {
 public:
  MongoStore(const std::string& uri) {
    const auto at = uri.find("blobs=");
    if (at == std::string::npos || (uri[at - 1] != '?' && uri[at - 1] != '&'))
      throw RegistryError(
          "registry '" + redact_uri(uri) + "': expected mongodb://HOST:PORT/DB?blobs=STORE_URI",
          RegistryError::Kind::Invalid);
    blobs_ = open_store(uri.substr(at + 6));
    const std::string meta = uri.substr(0, at - 1);
    describe_ = redact_uri(meta) + " (blobs in " + blobs_->describe() + ")";
    try {
      client_ = std::make_unique<mongodb::Client>(meta, mongodb::Timeouts{3000, 0, 0}, "registry");
    } catch (const std::invalid_argument& e) {
      throw RegistryError(e.what(), RegistryError::Kind::Invalid);
    }
  }

  std::string describe() const override { return describe_; }

  void put(const std::string& key, const std::string& bytes) override {
    if (key.starts_with("blobs/")) return blobs_->put(key, bytes);
    std::lock_guard lock(mu_);
    ensure_indexes();
    std::smatch m;
    bson_error_t e;
    if (std::regex_match(key, m, kManifest)) {
      Doc manifest(bson_new_from_json(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                      static_cast<ssize_t>(bytes.size()), &e));
      if (!manifest.get()) throw RegistryError("manifest '" + key + "' is not JSON: " + e.message);
      Doc doc(BCON_NEW("key", BCON_UTF8(key.c_str()), "name", BCON_UTF8(m[1].str().c_str()), "version",
                       BCON_INT64(std::stoll(m[2])), "manifest", BCON_DOCUMENT(manifest.get())));
      mongoc_collection_t* c = collection("registry_manifests");
      // Insert, never upsert: a published version is immutable (the unique index refuses a second one).
      const bool ok = mongoc_collection_insert_one(c, doc.get(), nullptr, nullptr, &e);
      mongoc_collection_destroy(c);
      if (!ok && e.code == 11000)
        throw RegistryError("'" + key + "' exists; versions are immutable", RegistryError::Kind::Exists);
      if (!ok) fail("insert " + key, e);
      return;
    }
    if (std::regex_match(key, m, kLatest)) {
      Doc filter(BCON_NEW("key", BCON_UTF8(key.c_str())));
      Doc update(BCON_NEW("$set", "{", "key", BCON_UTF8(key.c_str()), "name", BCON_UTF8(m[1].str().c_str()),
                          "version", BCON_INT64(std::stoll(bytes)), "}"));
      Doc opts(BCON_NEW("upsert", BCON_BOOL(true)));
      mongoc_collection_t* c = collection("registry_latest");
      const bool ok = mongoc_collection_update_one(c, filter.get(), update.get(), opts.get(), nullptr, &e);
      mongoc_collection_destroy(c);
      if (!ok) fail("update " + key, e);
      return;
    }
    throw RegistryError("registry " + describe_ + ": no place for key '" + key + "'",
                        RegistryError::Kind::Invalid);
  }

  std::optional<std::string> get(const std::string& key) override {
    if (key.starts_with("blobs/")) return blobs_->get(key);
    std::lock_guard lock(mu_);
    const bool manifest = std::regex_match(key, kManifest);
    Doc filter(BCON_NEW("key", BCON_UTF8(key.c_str())));
    mongoc_collection_t* c = collection(manifest ? "registry_manifests" : "registry_latest");
    mongoc_cursor_t* cur = mongoc_collection_find_with_opts(c, filter.get(), nullptr, nullptr);
    const bson_t* d = nullptr;
    std::optional<std::string> out;
    if (mongoc_cursor_next(cur, &d)) {
      bson_iter_t it;
      if (manifest && bson_iter_init_find(&it, d, "manifest") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const std::uint8_t* data = nullptr;
        std::uint32_t len = 0;
        bson_iter_document(&it, &len, &data);
        bson_t sub;
        if (bson_init_static(&sub, data, len)) out = mongodb::to_json(sub);
      } else if (!manifest && bson_iter_init_find(&it, d, "version") && BSON_ITER_HOLDS_NUMBER(&it)) {
        out = std::to_string(bson_iter_as_int64(&it));
      }
    }
    bson_error_t e;
    const bool failed = mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    if (failed) fail("read " + key, e);
    return out;
  }

  std::vector<std::string> list(const std::string& prefix) override {
    std::vector<std::string> out = blobs_->list(prefix);
    std::lock_guard lock(mu_);
    for (const char* name : {"registry_manifests", "registry_latest"}) {
      Doc filter(bson_new());
      Doc opts(BCON_NEW("projection", "{", "key", BCON_INT32(1), "}"));
      mongoc_collection_t* c = collection(name);
      mongoc_cursor_t* cur = mongoc_collection_find_with_opts(c, filter.get(), opts.get(), nullptr);
      const bson_t* d = nullptr;
      while (mongoc_cursor_next(cur, &d)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, d, "key") && BSON_ITER_HOLDS_UTF8(&it)) {
          std::string k = bson_iter_utf8(&it, nullptr);
          if (k.starts_with(prefix)) out.push_back(std::move(k));
        }
      }
      bson_error_t e;
      const bool failed = mongoc_cursor_error(cur, &e);
      mongoc_cursor_destroy(cur);
      mongoc_collection_destroy(c);
      if (failed) fail("list " + prefix, e);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void remove(const std::string& key) override {
    if (key.starts_with("blobs/")) return blobs_->remove(key);
    std::lock_guard lock(mu_);
    Doc filter(BCON_NEW("key", BCON_UTF8(key.c_str())));
    mongoc_collection_t* c =
        collection(std::regex_match(key, kManifest) ? "registry_manifests" : "registry_latest");
    bson_error_t e;
    const bool ok = mongoc_collection_delete_one(c, filter.get(), nullptr, nullptr, &e);
    mongoc_collection_destroy(c);
    if (!ok) fail("remove " + key, e);
  }

  std::optional<std::int64_t> allocate_version(const std::string& name, std::int64_t above) override {
    std::lock_guard lock(mu_);
    ensure_indexes();
    bson_error_t e;
    mongoc_collection_t* c = collection("registry_counters");
    Doc query(BCON_NEW("name", BCON_UTF8(name.c_str())));
    Doc lift(BCON_NEW("$max", "{", "seq", BCON_INT64(above), "}"));
    Doc upsert(BCON_NEW("upsert", BCON_BOOL(true)));
    bool ok = mongoc_collection_update_one(c, query.get(), lift.get(), upsert.get(), nullptr, &e);
    Doc inc(BCON_NEW("$inc", "{", "seq", BCON_INT64(1), "}"));
    bson_t reply;
    std::optional<std::int64_t> v;
    if (ok) {
      ok = mongoc_collection_find_and_modify(c, query.get(), nullptr, inc.get(), nullptr, false, true, true,
                                             &reply, &e);
      bson_iter_t it, value;
      if (ok && bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
          bson_iter_recurse(&it, &value) && bson_iter_find(&value, "seq") && BSON_ITER_HOLDS_NUMBER(&value))
        v = bson_iter_as_int64(&value);
      bson_destroy(&reply);
    }
    mongoc_collection_destroy(c);
    if (!ok) fail("allocate a version of '" + name + "'", e);
    if (!v)
      throw RegistryError("registry " + describe_ + ": findAndModify returned no counter for '" + name + "'");
    return v;
  }

 private:
  mongoc_collection_t* collection(const char* name) { return client_->collection(name); }

  void ensure_indexes() {
    if (indexed_) return;
    for (const auto& [coll, field] :
         {std::pair{"registry_manifests", "key"}, std::pair{"registry_latest", "key"},
          std::pair{"registry_counters", "name"}}) {
      bson_error_t e;
      if (!client_->write_command(*indexes_command(coll, field), e))
        fail(std::string("create indexes on ") + coll, e);
    }
    indexed_ = true;
  }

  [[noreturn]] void fail(const std::string& what, const bson_error_t& e) const {
    // Server selection and socket errors: the store is unreachable (resolve() falls back to the cache).
    const bool unreachable = e.domain == MONGOC_ERROR_SERVER_SELECTION || e.domain == MONGOC_ERROR_STREAM;
    throw RegistryError("registry " + describe_ + ": " + what + ": " + e.message,
                        unreachable ? RegistryError::Kind::Unreachable : RegistryError::Kind::Other);
  }

  std::unique_ptr<Store> blobs_;
  std::string describe_;
  std::unique_ptr<mongodb::Client> client_;
  std::mutex mu_;  // a mongoc_client_t is not thread-safe
  bool indexed_ = false;
};

}  // namespace

std::unique_ptr<Store> make_mongo_store(const std::string& uri) {
  return std::make_unique<MongoStore>(uri);
}

std::string mongo_store_indexes_json() {
  std::string out = "[";
  for (const auto& [coll, field] :
       {std::pair{"registry_manifests", "key"}, std::pair{"registry_latest", "key"},
        std::pair{"registry_counters", "name"}}) {
    Doc cmd = indexes_command(coll, field);
    if (out.size() > 1) out += ',';
    out += mongodb::to_json(*cmd);
  }
  return out + "]";
}

}  // namespace aitw::registry
