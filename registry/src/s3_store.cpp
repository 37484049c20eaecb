#include "s3_store.hpp"

#include <curl/curl.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "aitw/base/backoff.hpp"
#include "aitw/base/log.hpp"

namespace aitw::registry::s3 {

using Kind = RegistryError::Kind;

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Trims and collapses runs of spaces, as SigV4 canonical headers want.
std::string trim_value(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The text of the first <tag>...</tag> at or after `from` and before `end`; npos when absent.
std::size_t find_element(std::string_view xml, std::string_view tag, std::size_t from, std::size_t end,
                         std::string_view& text) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto a = xml.find(open, from);
  if (a == std::string_view::npos || a >= end) return std::string_view::npos;
  const auto b = xml.find(close, a + open.size());
  if (b == std::string_view::npos || b > end) throw RegistryError("S3 answer: unterminated <" + std::string(tag) + ">");
  text = xml.substr(a + open.size(), b - a - open.size());
  return b + close.size();
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) throw RegistryError("S3 answer: bad XML entity");
    const std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      unsigned long cp = 0;
      try {
        cp = ent[1] == 'x' ? std::stoul(std::string(ent.substr(2)), nullptr, 16)
                           : std::stoul(std::string(ent.substr(1)), nullptr, 10);
      } catch (const std::exception&) {
        throw RegistryError("S3 answer: bad XML character reference");
      }
      if (cp == 0 || cp > 0x10FFFF) throw RegistryError("S3 answer: bad XML character reference");
      // UTF-8 encode.
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      throw RegistryError("S3 answer: unknown XML entity &" + std::string(ent) + ";");
    }
    i = semi;
  }
  return out;
}

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

}  // namespace

Credentials credentials_from_env() {
  return {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &n);
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

Signature sign_v4(const SignRequest& r, const Credentials& c) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : r.headers) headers.emplace_back(lower(k), trim_value(v));
  std::sort(headers.begin(), headers.end());
  Signature s;
  std::string canonical_headers;
  for (const auto& [k, v] : headers) {
    canonical_headers += k + ":" + v + "\n";
    if (!s.signed_headers.empty()) s.signed_headers += ';';
    s.signed_headers += k;
  }
  s.canonical_request = r.method + "\n" + r.path + "\n" + canonical_query(r.query) + "\n" + canonical_headers +
                        "\n" + s.signed_headers + "\n" + r.payload_sha256;
  const std::string day = r.amz_date.substr(0, 8);
  const std::string scope = day + "/" + r.region + "/" + r.service + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + scope + "\n" + sha256_hex(s.canonical_request);
  std::string key = hmac_sha256("AWS4" + c.secret_key, day);
  key = hmac_sha256(key, r.region);
  key = hmac_sha256(key, r.service);
  key = hmac_sha256(key, "aws4_request");
  const std::string sig = hmac_sha256(key, s.string_to_sign);
  s.signature = hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/" + scope +
                    ",SignedHeaders=" + s.signed_headers + ",Signature=" + s.signature;
  return s;
}

ListPage parse_list_objects_v2(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos)
    throw RegistryError("S3 answer is not a ListBucketResult");
  ListPage page;
  std::string_view text;
  std::size_t pos = 0;
  while (true) {
    std::string_view contents;
    const auto next = find_element(xml, "Contents", pos, xml.size(), contents);
    if (next == std::string_view::npos) break;
    std::string_view key;
    if (find_element(contents, "Key", 0, contents.size(), key) == std::string_view::npos)
      throw RegistryError("S3 answer: <Contents> without <Key>");
    page.keys.push_back(xml_unescape(key));
    pos = next;
  }
  if (find_element(xml, "IsTruncated", 0, xml.size(), text) != std::string_view::npos)
    page.truncated = text == "true";
  if (find_element(xml, "NextContinuationToken", 0, xml.size(), text) != std::string_view::npos)
    page.next_token = xml_unescape(text);
  if (page.truncated && page.next_token.empty())
    throw RegistryError("S3 answer: truncated listing without NextContinuationToken");
  return page;
}

ErrorBody parse_error(std::string_view xml) {
  ErrorBody e;
  std::string_view text;
  try {
    if (find_element(xml, "Code", 0, xml.size(), text) != std::string_view::npos) e.code = xml_unescape(text);
    if (find_element(xml, "Message", 0, xml.size(), text) != std::string_view::npos)
      e.message = xml_unescape(text);
  } catch (const RegistryError&) {
    // A garbled error body: the HTTP status still tells the story.
  }
  return e;
}

// ---- circuit breaker -------------------------------------------------------------------------------------

bool CircuitBreaker::allow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (state_ == State::Closed) return true;
  if (state_ == State::Open) {
    if (now - opened_at_ < open_for_) return false;
    state_ = State::HalfOpen;
    trial_in_flight_ = false;
  }
  if (trial_in_flight_) return false;  // half-open: one trial at a time
  trial_in_flight_ = true;
  return true;
}

bool CircuitBreaker::on_failure(Clock::time_point now) {
  std::lock_guard lock(mu_);
  ++failures_;
  trial_in_flight_ = false;
  if (state_ == State::HalfOpen || (state_ == State::Closed && failures_ >= threshold_)) {
    state_ = State::Open;
    opened_at_ = now;
    return true;
  }
  return false;
}

void CircuitBreaker::on_success() {
  std::lock_guard lock(mu_);
  failures_ = 0;
  trial_in_flight_ = false;
  state_ = State::Closed;
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ == State::Open && now - opened_at_ >= open_for_) return State::HalfOpen;
  return state_;
}

std::chrono::milliseconds CircuitBreaker::retry_in(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ != State::Open) return std::chrono::milliseconds(0);
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(open_for_ - (now - opened_at_)));
}

const char* to_string(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::Closed: return "closed";
    case CircuitBreaker::State::Open: return "open";
    case CircuitBreaker::State::HalfOpen: return "half-open";
  }
  return "?";
}

// ---- URI -------------------------------------------------------------------------------------------------

Config parse_uri(const std::string& uri) {
  if (uri.rfind("s3://", 0) != 0) throw RegistryError("registry '" + uri + "': expected s3://bucket/prefix");
  Config c;
  std::string rest = uri.substr(5);
  std::string query;
  if (const auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  c.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) c.prefix = percent_decode(rest.substr(slash + 1));
  static const auto bucket_ok = [](const std::string& b) {
    if (b.size() < 3 || b.size() > 63) return false;
    return std::all_of(b.begin(), b.end(), [](char ch) {
      return std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
             ch == '-' || ch == '.';
    });
  };
  if (!bucket_ok(c.bucket))
    throw RegistryError("registry '" + uri + "': bad bucket name '" + c.bucket +
                            "' (3-63 characters: a-z 0-9 . -)",
                        Kind::Invalid);
  while (!c.prefix.empty() && c.prefix.back() == '/') c.prefix.pop_back();
  // "." / ".." / empty segments would be normalised by the HTTP stack after signing (and mean nothing here).
  for (std::size_t start = 0; !c.prefix.empty() && start <= c.prefix.size();) {
    const auto end = std::min(c.prefix.find('/', start), c.prefix.size());
    const std::string seg = c.prefix.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..")
      throw RegistryError("registry '" + uri + "': bad prefix (empty, '.' or '..' segment)", Kind::Invalid);
    start = end + 1;
  }
  if (!c.prefix.empty()) c.prefix += '/';

  auto number = [&](const std::string& k, const std::string& v, long long lo, long long hi) {
    try {
      std::size_t used = 0;
      const long long n = std::stoll(v, &used);
      if (used == v.size() && n >= lo && n <= hi) return n;
    } catch (const std::exception&) {
    }
    throw RegistryError("registry '" + uri + "': " + k + "=" + v + " is not a number in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "]",
                        Kind::Invalid);
  };
  bool have_endpoint = false;
  for (std::size_t start = 0; start < query.size();) {
    const auto amp = std::min(query.find('&', start), query.size());
    const std::string kv = query.substr(start, amp - start);
    start = amp + 1;
    if (kv.empty()) continue;
    const auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1));
    using ms = std::chrono::milliseconds;
    if (k == "endpoint") {
      if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
        throw RegistryError("registry '" + uri + "': endpoint must start with http:// or https://", Kind::Invalid);
      c.endpoint = v;
      while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
      // scheme://host[:port] only: a path would be signed as part of Host, user:password would end up in
      // every message.
      const std::string authority = c.endpoint.substr(c.endpoint.find("://") + 3);
      if (authority.empty() || authority.find_first_of("/?#@") != std::string::npos)
        throw RegistryError("registry s3://" + c.bucket + "/" + c.prefix +
                                ": endpoint must be scheme://host[:port] (no path, query or user)",
                            Kind::Invalid);
      have_endpoint = true;
    } else if (k == "region") {
      if (v.empty()) throw RegistryError("registry '" + uri + "': empty region", Kind::Invalid);
      c.region = v;
    } else if (k == "path_style") {
      c.path_style = v != "0" && v != "false";
    } else if (k == "connect_timeout_ms") {
      c.connect_timeout = ms(number(k, v, 1, 600000));
    } else if (k == "timeout_ms") {
      c.timeout = ms(number(k, v, 1, 3600000));
    } else if (k == "retries") {
      c.retries = static_cast<int>(number(k, v, 0, 10));
    } else if (k == "backoff_ms") {
      c.backoff = ms(number(k, v, 0, 60000));
    } else if (k == "breaker_failures") {
      c.breaker_failures = static_cast<int>(number(k, v, 1, 1000));
    } else if (k == "breaker_open_ms") {
      c.breaker_open = ms(number(k, v, 1, 3600000));
    } else if (k == "max_keys") {
      c.max_keys = static_cast<int>(number(k, v, 1, 1000));
    } else {
      throw RegistryError("registry '" + uri + "': unknown parameter '" + k +
                              "' (endpoint, region, path_style, connect_timeout_ms, timeout_ms, retries, "
                              "backoff_ms, breaker_failures, breaker_open_ms, max_keys)",
                          Kind::Invalid);
    }
  }
  if (!have_endpoint) {
    c.endpoint = "https://s3." + c.region + ".amazonaws.com";
    c.path_style = false;
  }
  return c;
}

// ---- store -----------------------------------------------------------------------------------------------

S3Store::S3Store(Config config, Credentials credentials)
    : config_(std::move(config)),
      credentials_(std::move(credentials)),
      breaker_(config_.breaker_failures, config_.breaker_open) {
  curl_init_once();
  curl_ = curl_easy_init();
  if (!curl_) throw RegistryError("libcurl: cannot create a handle");
}

S3Store::~S3Store() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

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
  if (!credentials_.session_token.empty()) sr.headers.emplace_back("x-amz-security-token", credentials_.session_token);
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
  std::lock_guard lock(curl_mu_);
  CURL* h = static_cast<CURL*>(curl_);
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
  return "/" + (config_.path_style ? config_.bucket + "/" : "") + uri_encode(config_.prefix + key, true);
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
    throw RegistryError("store unreachable: " + config_.endpoint + " (circuit open after repeated failures; " +
                            "next try in " + std::to_string(breaker_.retry_in().count()) + " ms)",
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
    throw RegistryError("store unreachable: " + config_.endpoint + " (" + r.transport_error + ") during " + what,
                        Kind::Unreachable);
  const ErrorBody e = parse_error(r.body);
  const std::string detail = e.code.empty() ? "HTTP " + std::to_string(r.status)
                                            : e.code + (e.message.empty() ? "" : ": " + e.message);
  if (e.code == "NoSuchBucket")
    throw RegistryError("bucket '" + config_.bucket + "' does not exist at " + config_.endpoint, Kind::NoBucket);
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
    std::vector<std::pair<std::string, std::string>> q = {
        {"list-type", "2"}, {"prefix", config_.prefix + prefix}, {"max-keys", std::to_string(config_.max_keys)}};
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
