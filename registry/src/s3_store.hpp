#pragma once
// The S3 side of the registry: AWS Signature V4 (S3 flavour, signed x-amz-content-sha256), the
// ListObjectsV2 / error XML parsers, and the s3:// store (libcurl) with timeouts, retries and a circuit
// breaker. aitw signs requests itself (OpenSSL HMAC-SHA256): Debian 12's libcurl 7.88 CURLOPT_AWS_SIGV4
// neither adds x-amz-content-sha256 nor canonicalises the query, and its clock cannot be fixed to check
// it against AWS's published examples (see registry/test/s3_test.cpp, which does that for ours).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aitw/base/sha256.hpp"
#include "aitw/registry/registry.hpp"

namespace aitw::registry::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional (AWS_SESSION_TOKEN)
};
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; empty fields when unset.
Credentials credentials_from_env();

using aitw::sha256_hex;
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes
// RFC 3986 percent-encoding the way SigV4 wants it: unreserved A-Z a-z 0-9 - _ . ~ kept, everything else
// %XX (upper case); '/' kept when keep_slash (object key paths).
std::string uri_encode(std::string_view s, bool keep_slash);
std::string amz_date(std::chrono::system_clock::time_point t);  // 20130524T000000Z

struct SignRequest {
  std::string method;                                      // GET, PUT, DELETE, ...
  std::string path;                                        // already uri_encode()d, starting with '/'
  std::vector<std::pair<std::string, std::string>> query;  // raw (unencoded) names and values
  std::vector<std::pair<std::string, std::string>> headers;  // must include host, x-amz-date
  std::string payload_sha256;                               // hex, also sent as x-amz-content-sha256
  std::string amz_date;                                     // 20130524T000000Z
  std::string region = "us-east-1";
  std::string service = "s3";
};
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // host;x-amz-content-sha256;x-amz-date
  std::string signature;       // hex
  std::string authorization;   // the Authorization header value
};
Signature sign_v4(const SignRequest& request, const Credentials& credentials);
// name=value pairs sorted by encoded name then value, joined by '&' (what is signed and what is sent).
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

// ListObjectsV2 result: keys (XML-unescaped), and the token of the next page when truncated.
struct ListPage {
  std::vector<std::string> keys;
  bool truncated = false;
  std::string next_token;
};
// Throws RegistryError on XML that is not a ListBucketResult.
ListPage parse_list_objects_v2(std::string_view xml);
// <Error><Code>..</Code><Message>..</Message></Error>; empty fields when absent.
struct ErrorBody {
  std::string code;
  std::string message;
};
ErrorBody parse_error(std::string_view xml);

// closed -> (failure_threshold consecutive failed calls) -> open -> (open_for) -> half-open: one trial
// call; success closes, failure opens again. While open, calls fail at once without touching the network.
class CircuitBreaker {
 public:
  enum class State { Closed, Open, HalfOpen };
  using Clock = std::chrono::steady_clock;
  CircuitBreaker(int failure_threshold, std::chrono::milliseconds open_for)
      : threshold_(failure_threshold), open_for_(open_for) {}
  // false = open: fail fast. true = go ahead (in half-open only the first caller gets true).
  bool allow(Clock::time_point now = Clock::now());
  // Returns true when this failure opened the breaker (to log it once).
  bool on_failure(Clock::time_point now = Clock::now());
  void on_success();
  State state(Clock::time_point now = Clock::now()) const;
  std::chrono::milliseconds retry_in(Clock::time_point now = Clock::now()) const;

 private:
  mutable std::mutex mu_;
  int threshold_;
  std::chrono::milliseconds open_for_;
  int failures_ = 0;
  State state_ = State::Closed;
  bool trial_in_flight_ = false;
  Clock::time_point opened_at_{};
};
const char* to_string(CircuitBreaker::State s);

// s3://bucket/prefix?endpoint=http://host:port&region=us-east-1&...  Path-style URLs when an endpoint is
// given (MinIO, s3rver), virtual-hosted https://bucket.s3.REGION.amazonaws.com otherwise.
struct Config {
  std::string bucket;
  std::string prefix;    // "" or ending in '/'
  std::string endpoint;  // scheme://host[:port], no trailing slash
  std::string region = "us-east-1";
  bool path_style = true;
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds timeout{120000};  // whole request (a model is tens of MB)
  int retries = 3;                            // after the first attempt, on transport errors / 5xx / 429
  std::chrono::milliseconds backoff{100};     // first retry delay; doubles, with jitter, capped at 2 s
  int breaker_failures = 3;
  std::chrono::milliseconds breaker_open{10000};
  int max_keys = 1000;  // ListObjectsV2 page size
};
// Throws RegistryError naming what is wrong with the URI.
Config parse_uri(const std::string& uri);

class S3Store : public Store {
 public:
  S3Store(Config config, Credentials credentials);
  ~S3Store() override;
  std::string describe() const override;
  void put(const std::string& key, const std::string& bytes) override;
  std::optional<std::string> get(const std::string& key) override;
  std::vector<std::string> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  CircuitBreaker::State breaker_state() const { return breaker_.state(); }
  const Config& config() const { return config_; }

  struct Response {
    long status = 0;  // 0 = transport failure
    std::string body;
    std::string transport_error;
  };

 private:
  std::string object_path(const std::string& key) const;  // encoded URL path of an object
  std::string bucket_path() const;                        // of the bucket (listing)
  Response call(const std::string& method, const std::string& path,
                const std::vector<std::pair<std::string, std::string>>& query, const std::string& body,
                const std::string& what);
  Response attempt(const std::string& method, const std::string& url_path,
                   const std::vector<std::pair<std::string, std::string>>& query, const std::string& body);
  [[noreturn]] void fail(const Response& r, const std::string& what) const;

  Config config_;
  Credentials credentials_;
  CircuitBreaker breaker_;
  std::mutex curl_mu_;
  void* curl_ = nullptr;  // CURL*, reused for keep-alive, guarded by curl_mu_
};

}  // namespace aitw::registry::s3
