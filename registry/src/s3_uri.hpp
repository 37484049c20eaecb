#pragma once
// s3://bucket/prefix?endpoint=http://host:port&region=us-east-1&...  Path-style URLs when an endpoint is
// given (MinIO, s3rver), virtual-hosted https://bucket.s3.REGION.amazonaws.com otherwise.
#include <chrono>
#include <string>

namespace aitw::registry::s3 {

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
// Throws RegistryError (Kind::Invalid for a bad bucket, prefix, endpoint or parameter) naming what is wrong
// with the URI.
Config parse_uri(const std::string& uri);

}  // namespace aitw::registry::s3
