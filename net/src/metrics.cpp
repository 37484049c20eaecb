#include "aitw/net/metrics.hpp"

#include <asio.hpp>

#include <charconv>
#include <functional>
#include <list>
#include <sstream>
#include <thread>
#include <vector>

#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"
#include "model_host.hpp"

namespace aitw::net {

namespace {

// The bucket bounds of both forward-time histograms, in milliseconds.
constexpr double kBucketsMs[] = {5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 250, 500, 1000};

// Label values are quoted strings: backslash, quote and newline escaped (the exposition format's rule).
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// A sample value or bound as the shortest text that reads back as the same double. The stream's default (6
// significant digits) rounded the sums: inference_time_ms_sum lost its milliseconds past 1000 s of forwards
// (1.23457e+06), so rate() over it moved in steps, and the seconds twin and the ms total disagreed.
std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void histogram_seconds(std::ostream& o, const std::string& labels, const pipeline::LatencyHistogram& h) {
  for (double le : kBucketsMs)
    o << "inference_duration_seconds_bucket{" << labels << ",le=\"" << num(le / 1000.0) << "\"} "
      << h.count_at_or_below(le) << "\n";
  o << "inference_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count() << "\n";
  o << "inference_duration_seconds_sum{" << labels << "} " << num(h.sum_ms() / 1000.0) << "\n";
  o << "inference_duration_seconds_count{" << labels << "} " << h.count() << "\n";
}

}  // namespace

std::string render_prometheus(const ServerStats& s) {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
  };
  metric("worker_state", "gauge", "0 IDLE, 1 LOADING, 2 READY, 3 SESSION_ACTIVE", static_cast<int>(s.state));
  metric("worker_draining", "gauge", "1 once SIGTERM began the drain (/readyz answers 503)",
         s.draining ? 1 : 0);
  metric("connections_active", "gauge", "Open worker sessions", s.connections_active);
  metric("connections_total", "counter", "Sessions accepted", s.connections_total);
  metric("messages_received_total", "counter", "Messages received from peers, heartbeats included",
         s.messages_received_total);
  metric("frames_received_total", "counter", "Frame messages received", s.frames_received_total);
  metric("frames_processed_total", "counter", "Frames answered with a Result", s.frames_processed_total);
  metric("models_loaded", "gauge", "Models held in memory", s.models_loaded);
  metric("model_load_seconds", "gauge", "Duration of the last model load", num(s.last_model_load_seconds));
  metric("model_loads_total", "counter", "Model loads started", s.model_loads_total);
  metric("transitions_to_idle_total", "counter", "Idle unloads", s.transitions_to_idle_total);
  const auto dropped = s.errors_by_cause.count("dropped") ? s.errors_by_cause.at("dropped") : 0;
  metric("frames_dropped_total", "counter", "Frames replaced by newer ones before inference (latest wins)",
         dropped);
  o << "# HELP errors_total Errors sent to clients, by cause\n# TYPE errors_total counter\n";
  for (const auto& [cause, n] : s.errors_by_cause)
    o << "errors_total{cause=\"" << label_value(cause) << "\"} " << n << "\n";
  // The seed's name, kept for its dashboards (promtool objects to the unit in it; the conventional twin is
  // inference_duration_seconds below).
  o << "# HELP inference_time_ms Forward time per frame\n# TYPE inference_time_ms histogram\n";
  for (double le : kBucketsMs)
    o << "inference_time_ms_bucket{le=\"" << num(le) << "\"} " << s.inference_time_ms.count_at_or_below(le)
      << "\n";
  o << "inference_time_ms_bucket{le=\"+Inf\"} " << s.inference_time_ms.count() << "\n";
  o << "inference_time_ms_sum " << num(s.inference_time_ms.sum_ms()) << "\n";
  o << "inference_time_ms_count " << s.inference_time_ms.count() << "\n";
  // Per model only (as Triton labels its series): an unlabelled total beside them would be counted twice by
  // sum(); the total without a label is inference_time_ms.
  o << "# HELP inference_duration_seconds Forward time per frame, by model (name@version or file name)\n"
    << "# TYPE inference_duration_seconds histogram\n";
  for (const auto& [model, h] : s.inference_time_by_model)
    histogram_seconds(o, "model=\"" + label_value(model) + "\"", h);
  return o.str();
}

// HTTP/1.1 served from its own Asio loop, one coroutine per connection, `Connection: close`: an idle or
// half-sent request costs a socket and a timer, never a thread, so no number of them can keep /healthz from
// answering (cpp-httplib's fixed thread pool could be held by 8 idle connections, 5 s each). Each request
// must arrive whole within kRequestTimeout; beyond kMaxConnections open, the oldest is closed.
struct MetricsEndpoint::Impl {
  static constexpr std::size_t kMaxRequestBytes = 8192;
  static constexpr std::size_t kMaxConnections = 256;
  static constexpr std::chrono::seconds kRequestTimeout{5};

  const Server& server;
  std::string host;
  std::uint16_t port;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::list<std::shared_ptr<asio::ip::tcp::socket>> open;  // oldest first
  std::thread thread;
  std::vector<std::function<std::string()>> extra;  // add_metrics(), all before start()
  Impl(const Server& s, std::string h, std::uint16_t p) : server(s), host(std::move(h)), port(p) {}

  // Status and body for a request line ("GET /path HTTP/1.1").
  std::pair<int, std::string> answer(const std::string& request_line, std::string& content_type) const {
    content_type = "text/plain";
    std::istringstream in(request_line);
    std::string method, target;
    in >> method >> target;
    if (const auto q = target.find('?'); q != std::string::npos) target.resize(q);
    if (method != "GET" && method != "HEAD") return {405, "only GET\n"};
    if (target == "/metrics") {
      content_type = "text/plain; version=0.0.4";
      std::string text = render_prometheus(server.stats());
      for (const auto& more : extra) text += more();
      return {200, text};
    }
    if (target == "/healthz") return {200, "ok\n"};
    if (target == "/readyz") {
      const auto st = server.stats();
      // A balancer must stop sending new connections at once when the worker begins to leave.
      if (st.draining) return {503, "draining\n"};
      // Ready = a model can be served: one is loaded, the default one is in a local model folder, or a
      // registry is configured (a fresh worker of a fleet that pulls every model from S3 must get sessions
      // from its balancer, or it would never load one). The registry is not asked: a probe must not wait
      // on (or download from) a remote store; a registry that fails answers that session's Init.
      if (st.models_loaded > 0 || default_model_on_disk() || model::has_model_resolver())
        return {200, "ready\n"};
      return {503, "no model available\n"};
    }
    return {404, "not found (/metrics, /healthz, /readyz)\n"};
  }

  asio::awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> sock) {
    asio::steady_timer deadline(io);
    deadline.expires_after(kRequestTimeout);
    deadline.async_wait([sock](const asio::error_code& ec) {
      asio::error_code ignored;
      if (!ec) sock->close(ignored);
    });
    try {
      std::string buf;
      co_await asio::async_read_until(*sock, asio::dynamic_buffer(buf, kMaxRequestBytes), "\r\n\r\n",
                                      asio::use_awaitable);
      std::string type;
      const auto [status, body] = answer(buf.substr(0, buf.find("\r\n")), type);
      const bool head = buf.rfind("HEAD ", 0) == 0;
      const char* reason = status == 200   ? "OK"
                           : status == 503 ? "Service Unavailable"
                           : status == 404 ? "Not Found"
                                           : "Method Not Allowed";
      std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                        "\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n";
      if (!head) out += body;
      co_await asio::async_write(*sock, asio::buffer(out), asio::use_awaitable);
    } catch (const std::exception&) {
      // closed by the deadline, the cap or the peer; a request above kMaxRequestBytes: nothing to answer
    }
    deadline.cancel();
    asio::error_code ec;
    sock->shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    sock->close(ec);
    open.remove(sock);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto sock = std::make_shared<asio::ip::tcp::socket>(io);
      asio::error_code ec;
      co_await acceptor.async_accept(*sock, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. out of descriptors: the next accept may succeed
      if (open.size() >= kMaxConnections) {
        asio::error_code ignored;
        open.front()->close(ignored);  // its coroutine ends and removes it
        open.pop_front();
      }
      open.push_back(sock);
      asio::co_spawn(io, serve(sock), asio::detached);
    }
  }
};

MetricsEndpoint::MetricsEndpoint(const Server& server, std::string host, std::uint16_t port)
    : impl_(std::make_unique<Impl>(server, std::move(host), port)) {}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
}

void MetricsEndpoint::add_metrics(std::function<std::string()> text) {
  impl_->extra.push_back(std::move(text));
}

void MetricsEndpoint::start() {
  auto& m = *impl_;
  try {
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(m.host), m.port);
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen();
  } catch (const std::exception& e) {
    throw std::runtime_error("metrics: cannot listen on " + m.host + ":" + std::to_string(m.port) + ": " +
                             e.what());
  }
  asio::co_spawn(m.io, m.accept_loop(), asio::detached);
  m.thread = std::thread([&m] {
    try {
      m.io.run();
    } catch (const std::exception& e) {
      aitw::log_error(std::string("metrics io loop: ") + e.what());
    }
  });
}

std::uint16_t MetricsEndpoint::port() const {
  asio::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void MetricsEndpoint::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace aitw::net
