#include "aitw/mongodb/mongodb.hpp"

#include <mutex>
#include <stdexcept>

#include "aitw/base/log.hpp"

namespace aitw::mongodb {

std::string to_json(const bson_t& b) {
  std::size_t len = 0;
  char* s = bson_as_relaxed_extended_json(&b, &len);
  std::string out = s ? std::string(s, len) : "";
  bson_free(s);
  return out;
}

std::string redact_uri(const std::string& uri) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  const auto authority = scheme + 3;
  const auto end = uri.find_first_of("/?", authority);
  const auto at = uri.rfind('@', end == std::string::npos ? uri.size() : end);
  if (at == std::string::npos || at < authority) return uri;
  return uri.substr(0, authority) + "***@" + uri.substr(at + 1);
}

namespace {

void init_driver() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_init();
    // The driver's own messages go to aitw's log at debug level: its warnings repeat for every retry of an
    // unreachable server, which the callers report once per outage instead.
    mongoc_log_set_handler([](mongoc_log_level_t, const char* domain, const char* message,
                              void*) { log_debug(std::string("mongoc ") + domain + ": " + message); },
                           nullptr);
  });
}

void default_timeout(mongoc_uri_t* uri, const char* option, int ms) {
  if (ms > 0 && !mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, ms);
}

}  // namespace

Client::Client(const std::string& uri, const Timeouts& timeouts, const std::string& label) {
  init_driver();
  const auto refused = [&](const bson_error_t& e) {
    return std::invalid_argument(label + " '" + redact_uri(uri) + "': " + e.message);
  };
  bson_error_t e;
  mongoc_uri_t* u = mongoc_uri_new_with_error(uri.c_str(), &e);
  if (!u) throw refused(e);
  default_timeout(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeouts.server_selection_ms);
  default_timeout(u, MONGOC_URI_CONNECTTIMEOUTMS, timeouts.connect_ms);
  default_timeout(u, MONGOC_URI_SOCKETTIMEOUTMS, timeouts.socket_ms);
  const char* db = mongoc_uri_get_database(u);
  database_ = db && *db ? db : "aitw";
  client_ = mongoc_client_new_from_uri_with_error(u, &e);
  mongoc_uri_destroy(u);
  if (!client_) throw refused(e);
  mongoc_client_set_appname(client_, "aitw");
  mongoc_client_set_error_api(client_, MONGOC_ERROR_API_VERSION_2);
}

Client::~Client() {
  mongoc_client_destroy(client_);
}

mongoc_collection_t* Client::collection(const char* name) const {
  return mongoc_client_get_collection(client_, database_.c_str(), name);
}

bool Client::write_command(const bson_t& command, bson_error_t& error) const {
  mongoc_database_t* db = mongoc_client_get_database(client_, database_.c_str());
  bson_t reply;
  const bool ok = mongoc_database_write_command_with_opts(db, &command, nullptr, &reply, &error);
  bson_destroy(&reply);
  mongoc_database_destroy(db);
  return ok;
}

}  // namespace aitw::mongodb
