#include "aitw/registry/registry.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "aitw/base/sha256.hpp"
#include "aitw/model/onnx_model.hpp"
#include "congodb.hpp"
#include "mongo_store.hpp"
#include "s3_store.hpp"
#include "s3rver.hpp"

namespace aitw::registry {
namespace {

namespace fs = std::filesystem;
const std::string kShared = AITW_SHARED_DIR;
const std::string kYolo11 = kShared + "/models/yolo11n.onnx";
const std::string kYolov8 = kShared + "/models/yolov8n.onnx";

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("aitw_reg_" + tag + "_" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void expect_error(const std::function<void()>& f, const std::string& needle,
                  std::optional<RegistryError::Kind> kind = std::nullopt) {
  try {
    f();
    FAIL() << "expected RegistryError with '" << needle << "'";
  } catch (const RegistryError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    if (kind) {
      EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(*kind)) << e.what();
    }
  }
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// One s3rver per test process (ctest runs each test in its own process), started on first use.
testing::S3rver& server() {
  static std::unique_ptr<testing::S3rver> s = [] {
    setenv("AWS_ACCESS_KEY_ID", testing::S3rver::kAccessKey, 1);
    setenv("AWS_SECRET_ACCESS_KEY", testing::S3rver::kSecretKey, 1);
    return std::make_unique<testing::S3rver>();
  }();
  return *s;
}

// One CongoDB (a MongoDB-wire server, history/test/congodb.hpp) per test process, started on first use.
aitw::history::testing::CongoDb& congo() {
  static aitw::history::testing::CongoDb c;
  return c;
}

// The same suite on every backend: "file" (the embedded default), "s3" (s3rver on loopback) and "mongo"
// (manifests and `latest` in CongoDB, the bytes in a file:// store).
class RegistrySuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    tag_ = std::string(info->name()).substr(0, std::string(info->name()).find('/')) + "-" +
           std::to_string(getpid()) + "-" + std::to_string(counter++);
    if (GetParam() == "s3") server();
    if (GetParam() == "mongo") congo();
  }
  // A fresh, empty store for each test; `extra` = s3 query knobs (ignored by file://).
  std::string uri(const std::string& extra = "", const std::string& prefix_suffix = "") {
    if (GetParam() == "file") return "file://" + (dir_.path / "store" / prefix_suffix).string();
    if (GetParam() == "mongo")  // a database per test; the blobs URI last (it may have its own query)
      return "mongodb://127.0.0.1:" + std::to_string(congo().port()) + "/" + tag_ + "?blobs=file://" +
             (dir_.path / "blobs" / prefix_suffix).string();
    return server().uri(tag_ + prefix_suffix, extra);
  }
  Registry open(const std::string& extra = "") { return Registry(open_store(uri(extra))); }
  std::string cache() const { return (dir_.path / "cache").string(); }

  TempDir dir_{"suite"};
  std::string tag_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RegistrySuite, ::testing::Values("file", "s3", "mongo"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace

TEST_P(RegistrySuite, PushVersionsLatestAndManifest) {
  Registry reg = open();
  const auto m1 = reg.push(kYolo11, "det", std::nullopt, {{"site", "gate-3"}});
  EXPECT_EQ(m1["version"], 1);
  EXPECT_EQ(m1["sha256"], aitw::sha256_hex(file_bytes(kYolo11)));
  EXPECT_EQ(m1["size"], fs::file_size(kYolo11));
  EXPECT_EQ(m1["source"], "yolo11n.onnx");
  EXPECT_EQ(m1["classes"].size(), 80u);
  EXPECT_EQ(m1["labels"]["site"], "gate-3");
  EXPECT_EQ(m1["adapter"]["head_strides"], (nlohmann::json{8, 16, 32}));
  EXPECT_TRUE(m1["adapter"]["attention"].get<bool>());
  const auto m2 = reg.push(kYolov8, "det", std::nullopt, {});
  EXPECT_EQ(m2["version"], 2);
  EXPECT_FALSE(m2["adapter"]["attention"].get<bool>());
  EXPECT_EQ(reg.versions("det"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(reg.manifest({"det", std::nullopt})["version"], 2);  // latest
  EXPECT_EQ(reg.manifest({"det", 1})["sha256"], m1["sha256"]);
  reg.push(kYolo11, "other", std::nullopt, {});
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"det", "other"}));
  // The bytes come back verified, and a second client sees the same store.
  EXPECT_EQ(reg.fetch(m1), file_bytes(kYolo11));
  Registry again = open();
  EXPECT_EQ(again.manifest({"det", 2})["sha256"], m2["sha256"]);
}

TEST_P(RegistrySuite, VersionsAreImmutableAndNamesValidated) {
  Registry reg = open();
  reg.push(kYolo11, "det", 5, {});
  expect_error([&] { reg.push(kYolov8, "det", 5, {}); }, "exists", RegistryError::Kind::Exists);
  expect_error([&] { reg.push(kYolo11, "../evil", std::nullopt, {}); }, "invalid model name");
  expect_error([&] { reg.push(kYolo11, "det", 0, {}); }, "positive");
  EXPECT_EQ(reg.push(kYolo11, "det", std::nullopt, {})["version"], 6);
  reg.push(kYolov8, "det", 3, {});  // an older number may still be filled in; latest stays 6
  EXPECT_EQ(reg.manifest({"det", std::nullopt})["version"], 6);
}

TEST_P(RegistrySuite, RefusesFilesTheAdapterCannotRun) {
  Registry reg = open();
  expect_error([&] { reg.push(kShared + "/datasets/images/bus.jpg", "bus", std::nullopt, {}); },
               "refusing to push");
  EXPECT_TRUE(reg.names().empty());
  EXPECT_TRUE(reg.store().list("").empty());
}

TEST_P(RegistrySuite, UnknownNamesAndVersionsAreClearErrors) {
  Registry reg = open();
  expect_error(
      [&] {
        reg.manifest({"nope", std::nullopt});
      },
      "unknown model 'nope'", RegistryError::Kind::NotFound);
  reg.push(kYolo11, "det", std::nullopt, {});
  expect_error([&] { reg.manifest({"det", 9}); }, "unknown version 'det@9'", RegistryError::Kind::NotFound);
  expect_error([&] { resolve(reg, {"det", 9}, cache()); }, "det@9", RegistryError::Kind::NotFound);
}

TEST_P(RegistrySuite, TamperedObjectIsRejectedByChecksum) {
  Registry reg = open();
  const auto m = reg.push(kYolo11, "det", std::nullopt, {});
  const std::string key = "blobs/sha256/" + m["sha256"].get<std::string>() + ".onnx";
  std::string bytes = *reg.store().get(key);
  bytes[1000] ^= 0x20;
  reg.store().put(key, bytes);  // the stored object changes behind the registry's back
  expect_error([&] { reg.fetch(m); }, "checksum mismatch", RegistryError::Kind::Checksum);
  expect_error(
      [&] {
        resolve(reg, {"det", 1}, cache());
      },
      "checksum mismatch", RegistryError::Kind::Checksum);
  EXPECT_FALSE(fs::exists(fs::path(cache()) / (m["sha256"].get<std::string>() + ".onnx")));  // nothing cached
}

TEST_P(RegistrySuite, RemoveMovesLatestAndKeepsSharedBlobs) {
  Registry reg = open();
  const auto m1 = reg.push(kYolo11, "det", std::nullopt, {});
  reg.push(kYolo11, "det", std::nullopt, {});  // same bytes, version 2: one blob
  reg.remove("det", 2);
  EXPECT_EQ(reg.manifest({"det", std::nullopt})["version"], 1);
  EXPECT_NO_THROW(reg.fetch(m1));  // still used by det@1
  reg.remove("det", 1);
  EXPECT_TRUE(reg.names().empty());
  EXPECT_TRUE(reg.store().list("blobs/").empty());
  expect_error([&] { reg.remove("det", 1); }, "unknown", RegistryError::Kind::NotFound);
}

// 10 versions = 12 keys; the s3 store lists them 4 per page (ListObjectsV2 continuation tokens: three full
// pages), and version 10 must sort after 9 although its key sorts before "2". Each push loads and adapts the
// model (15 versions took 14-17 s per backend under ASan, 40 took ~38 s).
TEST_P(RegistrySuite, ListsManyVersionsAcrossPages) {
  Registry reg = open("max_keys=4");
  for (int i = 0; i < 10; ++i) reg.push(kYolov8, "v8", std::nullopt, {});
  const auto v = reg.versions("v8");
  ASSERT_EQ(v.size(), 10u);
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  EXPECT_EQ(v.front(), 1);
  EXPECT_EQ(v.back(), 10);
  EXPECT_EQ(reg.store().list("").size(), 12u);  // 10 manifests, latest, one content-addressed blob
  EXPECT_EQ(reg.store().list("blobs/").size(), 1u);
  EXPECT_EQ(reg.manifest({"v8", std::nullopt})["version"], 10);
}

TEST_P(RegistrySuite, CacheIsVerifiedAndRefetchedWhenCorrupt) {
  Registry reg = open();
  const auto m = reg.push(kYolo11, "det", std::nullopt, {});
  const std::string path = cached_model_path(reg, m, cache());
  EXPECT_EQ(fs::path(path).filename().string(), m["sha256"].get<std::string>() + ".onnx");
  EXPECT_NO_THROW(model::OnnxModel::load(path));
  std::ofstream(path, std::ios::trunc) << "corrupted";  // a damaged cache entry
  const auto r = resolve(reg, {"det", 1}, cache());
  EXPECT_EQ(r.path, path);
  EXPECT_FALSE(r.from_cache_only);
  EXPECT_EQ(file_bytes(r.path), file_bytes(kYolo11));  // re-fetched
}

TEST_P(RegistrySuite, PrefixWithSpacesAndPlusRoundTrips) {
  const std::string u = GetParam() != "s3" ? uri("", "site 3+x") : uri("", "/site%203%2Bx");
  Registry reg(open_store(u));
  const auto m = reg.push(kYolov8, "det", std::nullopt, {});
  Registry again(open_store(u));
  EXPECT_EQ(again.names(), (std::vector<std::string>{"det"}));
  EXPECT_EQ(again.fetch(again.manifest({"det", 1})), file_bytes(kYolov8));
}

// What CongoDB cannot check: the unique indexes that keep a published version immutable and one counter
// per name on real MongoDB.
TEST(MongoRegistry, UniqueIndexesOnKeysAndCounters) {
  const auto j = nlohmann::json::parse(mongo_store_indexes_json());
  ASSERT_EQ(j.size(), 3u);
  std::map<std::string, std::string> unique_field;
  for (const auto& cmd : j) {
    const auto& index = cmd.at("indexes").at(0);
    EXPECT_TRUE(index.at("unique").get<bool>()) << cmd.dump();
    unique_field[cmd.at("createIndexes").get<std::string>()] = index.at("key").begin().key();
  }
  EXPECT_EQ(unique_field["registry_manifests"], "key");
  EXPECT_EQ(unique_field["registry_latest"], "key");
  EXPECT_EQ(unique_field["registry_counters"], "name");
}

// Versions come from the counter (findAndModify): above every version pushed with an explicit number, and
// distinct for two registries pushing the same name at the same time.
TEST(MongoRegistry, CounterAllocatesDistinctVersionsAboveExplicitOnes) {
  TempDir dir("mongo_counter");
  const std::string uri = "mongodb://127.0.0.1:" + std::to_string(congo().port()) + "/counter_" +
                          std::to_string(getpid()) + "?blobs=file://" + (dir.path / "blobs").string();
  auto a = open_store(uri), b = open_store(uri);
  EXPECT_EQ(a->allocate_version("det", 0), 1);
  EXPECT_EQ(b->allocate_version("det", 0), 2);
  EXPECT_EQ(a->allocate_version("det", 7), 8);  // version 7 was pushed explicitly
  EXPECT_EQ(a->allocate_version("other", 0), 1);
  std::vector<std::int64_t> got(20);
  std::thread t1([&] {
    for (int i = 0; i < 10; ++i) got[i] = *a->allocate_version("race", 0);
  });
  std::thread t2([&] {
    for (int i = 10; i < 20; ++i) got[i] = *b->allocate_version("race", 0);
  });
  t1.join();
  t2.join();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());  // no number handed out twice
  expect_error([] { open_store("mongodb://127.0.0.1:1/x"); }, "blobs=", RegistryError::Kind::Invalid);
}

TEST(Registry, UrisAndReferences) {
  expect_error([] { open_store("file://relative/path"); }, "absolute");
  expect_error([] { open_store("s3://Bad_Bucket/prefix"); }, "bad bucket name");
  expect_error([] { open_store("ftp://x"); }, "unknown scheme");
  auto r = parse_ref("yolo11n@3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "yolo11n");
  EXPECT_EQ(*r->version, 3);
  EXPECT_FALSE(parse_ref("yolo11n")->version);
  EXPECT_FALSE(parse_ref("../shared/models/yolo11n.onnx"));
  EXPECT_FALSE(parse_ref("model.onnx"));
  setenv("AITW_REGISTRY", "file:///srv/reg", 1);
  EXPECT_EQ(default_registry_uri(), "file:///srv/reg");
  unsetenv("AITW_REGISTRY");
}

// ---- faults only a networked store has
// ---------------------------------------------------------------------

TEST(S3Registry, ServerDownCachedModelServedBreakerOpensAndRecovers) {
  auto& s3 = server();
  TempDir cache("down");
  const std::string prefix = "down-" + std::to_string(getpid());
  Registry reg(open_store(s3.uri(
      prefix, "retries=1&backoff_ms=10&breaker_failures=2&breaker_open_ms=1500&connect_timeout_ms=500")));
  auto& store = dynamic_cast<s3::S3Store&>(reg.store());
  const auto pushed = reg.push(kYolo11, "det", std::nullopt, {});
  const auto first = resolve(reg, {"det", std::nullopt}, cache.path.string());
  EXPECT_FALSE(first.from_cache_only);
  resolve(reg, {"det", 1}, cache.path.string());

  s3.stop();
  ::testing::internal::CaptureStderr();
  const auto offline = resolve(reg, {"det", std::nullopt}, cache.path.string());  // failure 1
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("registry unreachable (store unreachable: " + s3.endpoint()), std::string::npos) << log;
  EXPECT_NE(log.find("serving the cached det@1"), std::string::npos) << log;
  EXPECT_EQ(log.find(testing::S3rver::kSecretKey), std::string::npos) << log;  // no secret in the log
  EXPECT_TRUE(offline.from_cache_only);
  EXPECT_EQ(offline.path, first.path);
  EXPECT_EQ(offline.manifest["sha256"], pushed["sha256"]);
  EXPECT_EQ(store.breaker_state(), s3::CircuitBreaker::State::Closed);
  EXPECT_TRUE(resolve(reg, {"det", 1}, cache.path.string()).from_cache_only);  // failure 2: opens
  EXPECT_EQ(store.breaker_state(), s3::CircuitBreaker::State::Open);
  // Open: no network at all. A listening socket stands on the store's port meanwhile and must see no
  // connection (a wall-clock bound would also pass a fast refused connect, and fail under sanitizers).
  {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(listener, 0);
    const int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(s3.port()));
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    ASSERT_EQ(listen(listener, 16), 0);
    EXPECT_TRUE(resolve(reg, {"det", 1}, cache.path.string()).from_cache_only);
    expect_error(
        [&] {
          resolve(reg, {"never-cached", std::nullopt}, cache.path.string());
        },
        "no cached copy", RegistryError::Kind::Unreachable);
    expect_error([&] { reg.names(); }, "circuit open", RegistryError::Kind::Unreachable);
    const int peer = accept(listener, nullptr, nullptr);
    EXPECT_LT(peer, 0) << "the open breaker let a request through to the store";
    if (peer >= 0) close(peer);
    close(listener);
  }

  s3.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(store.breaker_state(), s3::CircuitBreaker::State::HalfOpen);
  const auto back = resolve(reg, {"det", std::nullopt}, cache.path.string());  // the trial call succeeds
  EXPECT_FALSE(back.from_cache_only);
  EXPECT_EQ(store.breaker_state(), s3::CircuitBreaker::State::Closed);
  EXPECT_EQ(reg.versions("det"), (std::vector<std::int64_t>{1}));
}

// det@2 is published but its download fails while det@1 is cached: det@1 is still what an offline
// worker serves (the cache's `latest` moves only once the bytes are in).
TEST(S3Registry, FailedDownloadOfANewVersionKeepsTheCachedOneServable) {
  auto& s3 = server();
  TempDir cache("newver");
  const std::string prefix = "newver-" + std::to_string(getpid());
  Registry reg(open_store(s3.uri(prefix, "retries=0&breaker_failures=100")));
  reg.push(kYolo11, "det", std::nullopt, {});
  EXPECT_FALSE(resolve(reg, {"det", std::nullopt}, cache.path.string()).from_cache_only);
  const auto m2 = reg.push(kYolov8, "det", std::nullopt, {});
  reg.store().remove("blobs/sha256/" + m2["sha256"].get<std::string>() + ".onnx");  // det@2's bytes are gone
  expect_error([&] { resolve(reg, {"det", std::nullopt}, cache.path.string()); }, "bytes missing");
  s3.stop();
  const auto offline = resolve(reg, {"det", std::nullopt}, cache.path.string());
  EXPECT_TRUE(offline.from_cache_only);
  EXPECT_EQ(offline.manifest["version"], 1);
  s3.start();
}

TEST(S3Registry, InvalidManifestsAreRejected) {
  auto& s3 = server();
  Registry reg(open_store(s3.uri("badmanifest-" + std::to_string(getpid()))));
  reg.store().put("models/det/1.json", R"({"name": "det", "version": "1", "sha256": "ab"})");
  reg.store().put("models/det/2.json", R"({"name": "det", "version": 2, "sha256": "/etc/passwd"})");
  reg.store().put("models/det/3.json", "[1, 2");
  expect_error([&] { reg.manifest({"det", 1}); }, "invalid", RegistryError::Kind::Invalid);
  expect_error([&] { reg.manifest({"det", 2}); }, "64-hex sha256", RegistryError::Kind::Invalid);
  expect_error([&] { reg.manifest({"det", 3}); }, "not valid JSON");
}

TEST(S3Registry, UnknownAccessKeyIsAccessDenied) {
  auto& s3 = server();
  setenv("AWS_ACCESS_KEY_ID", "NOT-A-KEY", 1);
  auto store = open_store(s3.uri("denied"));
  setenv("AWS_ACCESS_KEY_ID", testing::S3rver::kAccessKey, 1);
  Registry reg(std::move(store));
  expect_error([&] { reg.names(); }, "InvalidAccessKeyId", RegistryError::Kind::AccessDenied);
  expect_error([&] { reg.push(kYolov8, "det", std::nullopt, {}); }, "access denied by " + s3.endpoint(),
               RegistryError::Kind::AccessDenied);
}

TEST(S3Registry, MissingCredentialsAreAClearError) {
  auto& s3 = server();
  unsetenv("AWS_SECRET_ACCESS_KEY");
  auto store = open_store(s3.uri("nocreds"));
  setenv("AWS_SECRET_ACCESS_KEY", testing::S3rver::kSecretKey, 1);
  Registry reg(std::move(store));
  expect_error([&] { reg.names(); }, "AWS_SECRET_ACCESS_KEY", RegistryError::Kind::AccessDenied);
}

TEST(S3Registry, MissingBucketIsAClearError) {
  auto& s3 = server();
  const std::string uri = "s3://no-such-bucket/x?endpoint=" + s3.endpoint();
  Registry reg(open_store(uri));
  expect_error([&] { reg.names(); }, "bucket 'no-such-bucket' does not exist at " + s3.endpoint(),
               RegistryError::Kind::NoBucket);
  expect_error([&] { reg.manifest({"det", 1}); }, "does not exist", RegistryError::Kind::NoBucket);
  expect_error([&] { reg.push(kYolov8, "det", std::nullopt, {}); }, "does not exist",
               RegistryError::Kind::NoBucket);
}

TEST(S3Registry, NothingListeningIsUnreachableNamingTheEndpoint) {
  testing::S3rver& s3 = server();
  (void)s3;
  // A port nobody listens on: connection refused, retried, then a clear error with the endpoint.
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  close(s);
  Registry reg(open_store("s3://aitw/x?endpoint=" + endpoint + "&retries=2&backoff_ms=20"));
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { reg.names(); }, "store unreachable: " + endpoint, RegistryError::Kind::Unreachable);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(20));  // it backed off
}

}  // namespace aitw::registry
