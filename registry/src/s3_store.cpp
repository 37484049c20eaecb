#include "s3_store.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "aitw/base/backoff.hpp"
#include "aitw/base/log.hpp"
#include "aitw/base/sha256.hpp"
#include "s3_xml.hpp"

namespace aitw::registry::s3 {

using Kind = RegistryError::Kind;

namespace {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Answers larger than this are refused (a model is tens of MB; a store streaming without end is broken).
constexpr std::size_t kMaxBody = std::size_t(2) << 30;

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  // No exception may cross libcurl's C frames: a failed append aborts the transfer instead.
  try {
    if (body->size() + size * n > kMaxBody) return 0;
    body->append(data, size * n);
  } catch (...) {
    return 0;
  }
  return size * n;
}

bool retryable(const S3Store::Response& r) {
  return r.status == 0 || r.status >= 500 || r.status == 429;
}

struct CurlEasyCleanup {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

}  // namespace

// One easy handle per store, reused so that requests keep the connection alive; a handle is not
// thread-safe, hence the mutex.
struct S3Store::Connection {
  std::mutex mu;
  std::unique_ptr<CURL, CurlEasyCleanup> curl;
};

S3Store::S3Store(Config config, Credentials credentials)
    : config_(std::move(config)),
      credentials_(std::move(credentials)),
      breaker_(config_.breaker_failures, config_.breaker_open),
      connection_(std::make_unique<Connection>()) {
  curl_init_once();
  connection_->curl.reset(curl_easy_init());
  if (!connection_->curl) throw RegistryError("libcurl: cannot create a handle");
}

S3Store::~S3Store() = default;

std::string S3Store::describe() const {
  return "s3://" + config_.bucket + "/" + config_.prefix + " at " + config_.endpoint;
}

S3Store::Response S3Store::attempt(const std::string& method, const std::string& url_path,
                                   const std::vector<std::pair<std::string, std::string>>& query,
                                   const std::string& body) {
  std::string origin = config_.endpoint;  // scheme://host[:port]
  std::string host = origin.substr(origin.find("://") + 3);
  if (!config_.path_style) {
    host = config_.bucket + "." + host;
    origin = origin.substr(0, origin.find("://") + 3) + host;
  }
  // curl sends Host as it appears in the URL; the default ports are left out by it and by us.
  if (host.ends_with(":80") && origin.rfind("http://", 0) == 0) host.resize(host.size() - 3);
  if (host.ends_with(":443") && origin.rfind("https://", 0) == 0) host.resize(host.size() - 4);
  const std::string qs = canonical_query(query);
  const std::string url = origin + url_path + (qs.empty() ? "" : "?" + qs);

  SignRequest sr;
  sr.method = method;
  sr.path = url_path;
  sr.query = query;
  sr.payload_sha256 = sha256_hex(body);
  sr.amz_date = amz_date(std::chrono::system_clock::now());
  sr.region = config_.region;
  sr.headers = {{"host", host}, {"x-amz-content-sha256", sr.payload_sha256}, {"x-amz-date", sr.amz_date}};
  if (!credentials_.session_token.empty())
    sr.headers.emplace_back("x-amz-security-token", credentials_.session_token);
  const Signature sig = sign_v4(sr, credentials_);

  curl_slist* headers = nullptr;
  auto add = [&](const std::string& h) { headers = curl_slist_append(headers, h.c_str()); };
  add("x-amz-content-sha256: " + sr.payload_sha256);
  add("x-amz-date: " + sr.amz_date);
  if (!credentials_.session_token.empty()) add("x-amz-security-token: " + credentials_.session_token);
  add("Authorization: " + sig.authorization);
  add("Expect:");  // no 100-continue round trip
  if (method == "PUT") add("Content-Type: application/octet-stream");

  Response r;
  std::lock_guard lock(connection_->mu);
  CURL* h = connection_->curl.get();
  curl_easy_reset(h);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  // A stalled transfer (under 1 KiB/s for 10 s) is cut before the overall timeout.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 10L);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBody));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  if (method == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);  // errbuf dies with this frame
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    r.status = 0;
    r.transport_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    r.body.clear();
    return r;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

std::string S3Store::object_path(const std::string& key) const {
  // Appended, not "/" + (...): GCC 12 warns falsely (-Wrestrict) on that form at -O3.
  std::string path = "/";
  if (config_.path_style) path += config_.bucket + "/";
  return path + uri_encode(config_.prefix + key, true);
}

std::string S3Store::bucket_path() const {
  return config_.path_style ? "/" + config_.bucket : "/";
}

S3Store::Response S3Store::call(const std::string& method, const std::string& path,
                                const std::vector<std::pair<std::string, std::string>>& query,
                                const std::string& body, const std::string& what) {
  if (credentials_.access_key.empty() || credentials_.secret_key.empty())
    throw RegistryError(describe() + ": no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                        Kind::AccessDenied);
  if (!breaker_.allow())
    throw RegistryError("store unreachable: " + config_.endpoint +
                            " (circuit open after repeated failures; " + "next try in " +
                            std::to_string(breaker_.retry_in().count()) + " ms)",
                        Kind::Unreachable);
  // Whatever happens below (even an exception), the breaker hears how the call ended: a half-open trial
  // that never reports back would keep it half-open forever.
  struct Guard {
    CircuitBreaker& b;
    bool reported = false;
    ~Guard() {
      if (!reported) b.on_failure();
    }
  } guard{breaker_};
  Response r;
  Backoff backoff(config_.backoff, std::chrono::milliseconds(2000));  // capped at 2 s
  for (int i = 0;; ++i) {
    r = attempt(method, path, query, body);
    if (!retryable(r) || i >= config_.retries) break;
    const auto wait = backoff.next();
    log_warn(what + ": " + (r.status ? "HTTP " + std::to_string(r.status) : r.transport_error) + "; retry " +
             std::to_string(i + 1) + " in " + std::to_string(wait.count()) + " ms");
    std::this_thread::sleep_for(wait);
  }
  guard.reported = true;
  if (retryable(r)) {
    if (breaker_.on_failure())
      aitw::log_warn("registry " + config_.endpoint + " unreachable: circuit open for " +
                     std::to_string(config_.breaker_open.count()) + " ms (" +
                     (r.status ? "HTTP " + std::to_string(r.status) : r.transport_error) + ")");
  } else {
    breaker_.on_success();  // the store answered (a 4xx is an answer)
  }
  return r;
}

void S3Store::fail(const Response& r, const std::string& what) const {
  if (r.status == 0)
    throw RegistryError(
        "store unreachable: " + config_.endpoint + " (" + r.transport_error + ") during " + what,
        Kind::Unreachable);
  const ErrorBody e = parse_error(r.body);
  const std::string detail = e.code.empty() ? "HTTP " + std::to_string(r.status)
                                            : e.code + (e.message.empty() ? "" : ": " + e.message);
  if (e.code == "NoSuchBucket")
    throw RegistryError("bucket '" + config_.bucket + "' does not exist at " + config_.endpoint,
                        Kind::NoBucket);
  if (e.code == "InvalidAccessKeyId")
    throw RegistryError("access denied by " + config_.endpoint +
                            ": InvalidAccessKeyId (the store does not know the key in AWS_ACCESS_KEY_ID)",
                        Kind::AccessDenied);
  if (r.status == 403 || r.status == 401)
    throw RegistryError("access denied by " + config_.endpoint + " (" + detail + ") during " + what,
                        Kind::AccessDenied);
  if (r.status >= 500 || r.status == 429)
    throw RegistryError("store unavailable: " + config_.endpoint + " (" + detail + ") during " + what,
                        Kind::Unreachable);
  throw RegistryError(describe() + ": " + what + " failed (" + detail + ")");
}

void S3Store::put(const std::string& key, const std::string& bytes) {
  const auto r = call("PUT", object_path(key), {}, bytes, "PUT " + key);
  if (r.status != 200) fail(r, "PUT " + key);
}

std::optional<std::string> S3Store::get(const std::string& key) {
  auto r = call("GET", object_path(key), {}, "", "GET " + key);
  if (r.status == 200) return std::move(r.body);
  if (r.status == 404 && parse_error(r.body).code != "NoSuchBucket") return std::nullopt;
  fail(r, "GET " + key);
}

std::vector<std::string> S3Store::list(const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  for (int page = 0;; ++page) {
    std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"},
                                                          {"prefix", config_.prefix + prefix},
                                                          {"max-keys", std::to_string(config_.max_keys)}};
    if (!token.empty()) q.emplace_back("continuation-token", token);
    const std::string what = "list " + prefix;
    const Response r = call("GET", bucket_path(), q, "", what);
    if (r.status != 200) fail(r, what);
    ListPage p;
    try {
      p = parse_list_objects_v2(r.body);
    } catch (const RegistryError& e) {
      throw RegistryError(describe() + ": " + e.what());
    }
    for (auto& k : p.keys)
      if (k.rfind(config_.prefix, 0) == 0) keys.push_back(k.substr(config_.prefix.size()));
    if (!p.truncated) break;
    if (p.next_token == token || page > 100000)
      throw RegistryError(describe() + ": listing does not advance (continuation token repeats)");
    token = p.next_token;
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

void S3Store::remove(const std::string& key) {
  const auto r = call("DELETE", object_path(key), {}, "", "DELETE " + key);
  if (r.status != 204 && r.status != 200) fail(r, "DELETE " + key);
}

}  // namespace aitw::registry::s3
