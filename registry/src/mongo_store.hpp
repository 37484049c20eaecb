#pragma once
// The registry seed's layout: manifests and `latest` pointers are documents in MongoDB, the bytes stay in a
// file:// or s3:// store. mongodb://HOST:PORT/DB?blobs=<store URI> (the blobs parameter last: the store URI
// may carry its own query). Collections: registry_manifests {key, name, version, manifest},
// registry_latest {key, name, version} and registry_counters {name, seq}, where versions are allocated
// atomically (findAndModify). A published manifest is inserted, never replaced (a unique index on key).
#include <memory>
#include <string>

#include "aitw/registry/registry.hpp"

namespace aitw::registry {

// Throws RegistryError (Invalid) for a URI without blobs= or that libmongoc refuses.
std::unique_ptr<Store> make_mongo_store(const std::string& uri);

// The createIndexes commands of the store as a JSON array (relaxed extended JSON), for the unit tests: the
// unique indexes that make versions immutable, which CongoDB does not enforce.
std::string mongo_store_indexes_json();

}  // namespace aitw::registry
