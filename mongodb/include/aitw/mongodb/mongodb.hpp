#pragma once
// libmongoc helpers shared by the history's MongoDB sink and the registry's MongoDB metadata store.
#include <mongoc/mongoc.h>

#include <string>
#include <utility>

namespace aitw::mongodb {

// An owned bson_t (not a unique_ptr: bson_t's alignment attribute is dropped in template arguments).
class Bson {
 public:
  explicit Bson(bson_t* b) : b_(b) {}
  Bson(Bson&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  Bson& operator=(Bson&&) = delete;
  ~Bson() {
    if (b_) bson_destroy(b_);
  }
  bson_t* get() const { return b_; }
  const bson_t& operator*() const { return *b_; }

 private:
  bson_t* b_;
};

// Relaxed extended JSON of `b` (tests, error messages, the registry's manifests).
std::string to_json(const bson_t& b);

// `uri` with the user:password of its authority replaced by "***" (for logs and errors); as is without.
std::string redact_uri(const std::string& uri);

// Timeouts set on a client's URI unless the URI sets them itself; 0 keeps the driver's default.
struct Timeouts {
  int server_selection_ms = 0, connect_ms = 0, socket_ms = 0;
};

// A client of `uri` (mongoc_init once per process; the driver's own log lines go to aitw's debug log),
// error API version 2, application name "aitw". Does not connect. For a URI the driver refuses, throws
// std::invalid_argument("LABEL 'redacted uri': the driver's message").
class Client {
 public:
  Client(const std::string& uri, const Timeouts& timeouts, const std::string& label);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  mongoc_client_t* get() const { return client_; }
  // The URI's database, "aitw" when it names none.
  const std::string& database() const { return database_; }
  mongoc_collection_t* collection(const char* name) const;  // the caller destroys it
  // A command on the database that writes (createIndexes ...): true, or false with `error` set.
  bool write_command(const bson_t& command, bson_error_t& error) const;

 private:
  mongoc_client_t* client_ = nullptr;
  std::string database_;
};

}  // namespace aitw::mongodb
