#pragma once
// The s3:// store (libcurl): SigV4-signed requests with timeouts, retries with jittered backoff on
// transport errors / 5xx / 429, and a circuit breaker in front. Made by open_store() for s3:// URIs.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aitw/registry/registry.hpp"
#include "circuit_breaker.hpp"
#include "s3_uri.hpp"
#include "sigv4.hpp"

namespace aitw::registry::s3 {

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
  struct Connection;  // the libcurl handle (s3_store.cpp), kept out of every header

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
  std::unique_ptr<Connection> connection_;
};

}  // namespace aitw::registry::s3
