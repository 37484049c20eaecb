#pragma once
// AWS Signature V4, S3 flavour (signed x-amz-content-sha256). aitw signs requests itself (OpenSSL
// HMAC-SHA256): Debian 12's libcurl 7.88 CURLOPT_AWS_SIGV4 neither adds x-amz-content-sha256 nor
// canonicalises the query, and its clock cannot be fixed to check it against AWS's published examples (see
// registry/test/s3_test.cpp, which does that for ours).
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aitw::registry::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional (AWS_SESSION_TOKEN)
};
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; empty fields when unset.
Credentials credentials_from_env();

// RFC 3986 percent-encoding the way SigV4 wants it: unreserved A-Z a-z 0-9 - _ . ~ kept, everything else
// %XX (upper case); '/' kept when keep_slash (object key paths).
std::string uri_encode(std::string_view s, bool keep_slash);
std::string amz_date(std::chrono::system_clock::time_point t);  // 20130524T000000Z

struct SignRequest {
  std::string method;                                        // GET, PUT, DELETE, ...
  std::string path;                                          // already uri_encode()d, starting with '/'
  std::vector<std::pair<std::string, std::string>> query;    // raw (unencoded) names and values
  std::vector<std::pair<std::string, std::string>> headers;  // must include host, x-amz-date
  std::string payload_sha256;                                // hex, also sent as x-amz-content-sha256
  std::string amz_date;                                      // 20130524T000000Z
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

}  // namespace aitw::registry::s3
