// SigV4 against AWS's published S3 examples (the test server does not verify V4 signatures, so these are
// what proves the signer), the XML parsers, the circuit breaker and s3:// URI parsing.
// Examples: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
#include <gtest/gtest.h>

#include "aitw/base/sha256.hpp"
#include "aitw/registry/registry.hpp"
#include "circuit_breaker.hpp"
#include "s3_uri.hpp"
#include "s3_xml.hpp"
#include "sigv4.hpp"

namespace aitw::registry::s3 {
namespace {

const Credentials kAws{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kDate = "20130524T000000Z";
const std::string kHost = "examplebucket.s3.amazonaws.com";

SignRequest example(const std::string& method, const std::string& path, const std::string& payload_sha) {
  SignRequest r;
  r.method = method;
  r.path = path;
  r.payload_sha256 = payload_sha;
  r.amz_date = kDate;
  r.headers = {{"Host", kHost}, {"x-amz-content-sha256", payload_sha}, {"x-amz-date", kDate}};
  return r;
}

TEST(SigV4, AwsExampleGetObject) {
  auto r = example("GET", "/test.txt", kEmpty);
  r.headers.emplace_back("Range", "bytes=0-9");
  const auto s = sign_v4(r, kAws);
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, AwsExamplePutObject) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string sha = sha256_hex(body);
  ASSERT_EQ(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  auto r = example("PUT", "/" + uri_encode("test$file.text", true), sha);
  r.headers.emplace_back("Date", "Fri, 24 May 2013 00:00:00 GMT");
  r.headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
  const auto s = sign_v4(r, kAws);
  EXPECT_EQ(s.canonical_request,
            "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
            "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, AwsExampleGetBucketLifecycle) {
  auto r = example("GET", "/", kEmpty);
  r.query = {{"lifecycle", ""}};
  const auto s = sign_v4(r, kAws);
  EXPECT_NE(s.canonical_request.find("\n/\nlifecycle=\n"), std::string::npos) << s.canonical_request;
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, AwsExampleListObjectsSortsTheQuery) {
  auto r = example("GET", "/", kEmpty);
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // given unsorted
  const auto s = sign_v4(r, kAws);
  EXPECT_NE(s.canonical_request.find("\n/\nmax-keys=2&prefix=J\n"), std::string::npos) << s.canonical_request;
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, EverySignedPartChangesTheSignature) {
  const auto base = sign_v4(example("GET", "/test.txt", kEmpty), kAws).signature;
  auto other = [&](auto mutate) {
    auto r = example("GET", "/test.txt", kEmpty);
    auto c = kAws;
    mutate(r, c);
    return sign_v4(r, c).signature;
  };
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.method = "PUT"; }));
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.path = "/test2.txt"; }));
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.query = {{"a", "b"}}; }));
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.payload_sha256 = sha256_hex("x"); }));
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.region = "eu-west-1"; }));
  EXPECT_NE(base, other([](SignRequest& r, Credentials&) { r.amz_date = "20130525T000000Z"; }));
  EXPECT_NE(base, other([](SignRequest&, Credentials& c) { c.secret_key += "x"; }));
  // Header names are case-insensitive and values are trimmed: same signature.
  EXPECT_EQ(
      base, other([](SignRequest& r, Credentials&) {
        r.headers = {{"HOST", "  " + kHost + " "}, {"X-Amz-Content-Sha256", kEmpty}, {"X-AMZ-DATE", kDate}};
      }));
}

TEST(SigV4, EncodingAndDates) {
  EXPECT_EQ(uri_encode("A-z_0.9~", false), "A-z_0.9~");
  EXPECT_EQ(uri_encode("a b+c/d=é", true), "a%20b%2Bc/d%3D%C3%A9");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("!'()*$", true), "%21%27%28%29%2A%24");
  EXPECT_EQ(canonical_query({{"prefix", "models/a b"}, {"list-type", "2"}, {"continuation-token", "x+y=="}}),
            "continuation-token=x%2By%3D%3D&list-type=2&prefix=models%2Fa%20b");
  EXPECT_EQ(canonical_query({}), "");
  EXPECT_EQ(amz_date(std::chrono::system_clock::from_time_t(1369353600)), "20130524T000000Z");
  EXPECT_EQ(amz_date(std::chrono::system_clock::from_time_t(951782400)), "20000229T000000Z");
  EXPECT_EQ(sha256_hex(""), kEmpty);
}

TEST(S3Xml, ListObjectsV2PagesAndEntities) {
  const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b.json</Key><Size>3</Size></Contents>
<Contents><Key>p/&#233;t&#xE9;</Key><Size>4</Size></Contents>
<NextContinuationToken>tok&lt;1&gt;</NextContinuationToken></ListBucketResult>)";
  const auto p = parse_list_objects_v2(xml);
  EXPECT_EQ(p.keys, (std::vector<std::string>{"p/a&b.json", "p/\xC3\xA9t\xC3\xA9"}));
  EXPECT_TRUE(p.truncated);
  EXPECT_EQ(p.next_token, "tok<1>");
  const auto last =
      parse_list_objects_v2("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  EXPECT_TRUE(last.keys.empty());
  EXPECT_FALSE(last.truncated);
}

TEST(S3Xml, MalformedListingsAreErrorsNotCrashes) {
  for (const std::string bad :
       {"", "<html>no</html>", "<ListBucketResult><Contents><Key>a</Contents>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#99999999999999999999;</Key></Contents></ListBucketResult>"}) {
    EXPECT_THROW(parse_list_objects_v2(bad), RegistryError) << bad;
  }
}

TEST(S3Xml, ErrorBodies) {
  const auto e = parse_error(
      "<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you "
      "provided does not exist in our records.</Message><AWSAccessKeyId>X</AWSAccessKeyId></Error>");
  EXPECT_EQ(e.code, "InvalidAccessKeyId");
  EXPECT_NE(e.message.find("does not exist"), std::string::npos);
  EXPECT_TRUE(parse_error("garbage").code.empty());
  EXPECT_TRUE(parse_error("<Error><Code>unterminated").code.empty());
}

TEST(CircuitBreaker, OpensAfterThresholdHalfOpensAndRecovers) {
  using namespace std::chrono_literals;
  CircuitBreaker b(3, 1000ms);
  const auto t0 = CircuitBreaker::Clock::now();
  EXPECT_TRUE(b.allow(t0));
  EXPECT_FALSE(b.on_failure(t0));
  EXPECT_FALSE(b.on_failure(t0));
  b.on_success();  // a success resets the count
  EXPECT_FALSE(b.on_failure(t0));
  EXPECT_FALSE(b.on_failure(t0));
  EXPECT_EQ(b.state(t0), CircuitBreaker::State::Closed);
  EXPECT_TRUE(b.on_failure(t0));  // third in a row: opens
  EXPECT_EQ(b.state(t0), CircuitBreaker::State::Open);
  EXPECT_FALSE(b.allow(t0 + 500ms));
  EXPECT_EQ(b.retry_in(t0 + 400ms), 600ms);
  // After open_for: one trial call; others still fail fast.
  EXPECT_EQ(b.state(t0 + 1000ms), CircuitBreaker::State::HalfOpen);
  EXPECT_TRUE(b.allow(t0 + 1000ms));
  EXPECT_FALSE(b.allow(t0 + 1001ms));
  EXPECT_TRUE(b.on_failure(t0 + 1100ms));  // the trial failed: open again, from now
  EXPECT_FALSE(b.allow(t0 + 2000ms));
  EXPECT_TRUE(b.allow(t0 + 2100ms));
  b.on_success();
  EXPECT_EQ(b.state(t0 + 2100ms), CircuitBreaker::State::Closed);
  EXPECT_TRUE(b.allow(t0 + 2100ms));
  EXPECT_TRUE(b.allow(t0 + 2100ms));
}

TEST(S3Uri, ParsesEndpointRegionPrefixAndKnobs) {
  const auto c = parse_uri(
      "s3://models/edge/site-3/?endpoint=http%3A%2F%2F127.0.0.1%3A9000/&region=eu-west-1&retries=1&"
      "backoff_ms=5&breaker_failures=2&breaker_open_ms=700&max_keys=7&timeout_ms=900&connect_timeout_ms=50");
  EXPECT_EQ(c.bucket, "models");
  EXPECT_EQ(c.prefix, "edge/site-3/");
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_TRUE(c.path_style);
  EXPECT_EQ(c.retries, 1);
  EXPECT_EQ(c.backoff.count(), 5);
  EXPECT_EQ(c.breaker_failures, 2);
  EXPECT_EQ(c.breaker_open.count(), 700);
  EXPECT_EQ(c.max_keys, 7);
  EXPECT_EQ(c.timeout.count(), 900);
  EXPECT_EQ(c.connect_timeout.count(), 50);
  const auto aws = parse_uri("s3://my-bucket?region=us-west-2");
  EXPECT_EQ(aws.prefix, "");
  EXPECT_EQ(aws.endpoint, "https://s3.us-west-2.amazonaws.com");
  EXPECT_FALSE(aws.path_style);
}

TEST(S3Uri, BadUrisAreClearErrors) {
  auto message = [](const std::string& uri) {
    try {
      parse_uri(uri);
    } catch (const RegistryError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("s3://Bad_Bucket/x").find("bad bucket name"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=ftp://h").find("http://"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?retries=many").find("retries=many"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?max_keys=5000").find("max_keys"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?colour=red").find("unknown parameter 'colour'"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/../x").find("bad prefix"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/a/./b").find("bad prefix"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/a//b").find("bad prefix"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://h:9000/minio").find("scheme://host[:port]"),
            std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://h:99999").find("port 99999 is out of range 1-65535"),
            std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://h:abc").find("port 'abc' is not a number"),
            std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://h:").find("missing port"), std::string::npos);
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://::1:9000").find("needs brackets"), std::string::npos);
  EXPECT_EQ(message("s3://ok-bucket/x?endpoint=http://[::1]:9000"), "no error");
  EXPECT_NE(message("s3://ok-bucket/x?endpoint=http://u:pw@h:9000").find("no path, query or user"),
            std::string::npos);
  EXPECT_EQ(message("s3://ok-bucket/x?endpoint=http://u:pw@h:9000").find("pw"), std::string::npos)
      << "a password in the endpoint must not be echoed";
}

}  // namespace
}  // namespace aitw::registry::s3
