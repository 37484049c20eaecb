#include "aitw/net/metrics.hpp"

#include <httplib.h>

#include <sstream>
#include <thread>
#include <vector>

#include "model_host.hpp"

namespace aitw::net {

std::string render_prometheus(const ServerStats& s) {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
  };
  metric("worker_state", "gauge", "0 IDLE, 1 LOADING, 2 READY, 3 SESSION_ACTIVE", static_cast<int>(s.state));
  metric("connections_active", "gauge", "Open worker sessions", s.connections_active);
  metric("connections_total", "counter", "Sessions accepted", s.connections_total);
  metric("frames_received_total", "counter", "Frame messages received", s.frames_received_total);
  metric("frames_processed_total", "counter", "Frames answered with a Result", s.frames_processed_total);
  metric("models_loaded", "gauge", "Models held in memory", s.models_loaded);
  metric("model_load_seconds", "gauge", "Duration of the last model load", s.last_model_load_seconds);
  metric("model_loads_total", "counter", "Model loads started", s.model_loads_total);
  metric("transitions_to_idle_total", "counter", "Idle unloads", s.transitions_to_idle_total);
  const auto dropped = s.errors_by_cause.count("dropped") ? s.errors_by_cause.at("dropped") : 0;
  metric("frames_dropped_total", "counter", "Frames replaced by newer ones before inference (latest wins)",
         dropped);
  o << "# HELP errors_total Errors sent to clients, by cause\n# TYPE errors_total counter\n";
  for (const auto& [cause, n] : s.errors_by_cause)
    o << "errors_total{cause=\"" << cause << "\"} " << n << "\n";
  o << "# HELP inference_time_ms Forward time per frame\n# TYPE inference_time_ms histogram\n";
  for (double le : {5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 250.0, 500.0, 1000.0})
    o << "inference_time_ms_bucket{le=\"" << le << "\"} " << s.inference_time_ms.count_at_or_below(le)
      << "\n";
  o << "inference_time_ms_bucket{le=\"+Inf\"} " << s.inference_time_ms.count() << "\n";
  o << "inference_time_ms_sum " << s.inference_time_ms.sum_ms() << "\n";
  o << "inference_time_ms_count " << s.inference_time_ms.count() << "\n";
  return o.str();
}

struct MetricsEndpoint::Impl {
  const Server& server;
  std::string host;
  std::uint16_t port;
  httplib::Server http;
  std::thread thread;
  int bound = -1;
  std::vector<std::function<std::string()>> extra;
  Impl(const Server& s, std::string h, std::uint16_t p) : server(s), host(std::move(h)), port(p) {}
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
  m.http.Get("/metrics", [&m](const httplib::Request&, httplib::Response& res) {
    std::string text = render_prometheus(m.server.stats());
    for (const auto& more : m.extra) text += more();
    res.set_content(text, "text/plain; version=0.0.4");
  });
  m.http.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  m.http.Get("/readyz", [&m](const httplib::Request&, httplib::Response& res) {
    // Ready = a model can be served: one is loaded, or the default one is in a local model folder. The
    // registry is not asked: a probe must not wait on (or download from) a remote store.
    const bool ready = m.server.stats().models_loaded > 0 || default_model_on_disk();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "no model available\n", "text/plain");
  });
  m.bound = m.port ? (m.http.bind_to_port(m.host.c_str(), m.port) ? m.port : -1)
                   : m.http.bind_to_any_port(m.host.c_str());
  if (m.bound <= 0)
    throw std::runtime_error("metrics: cannot listen on " + m.host + ":" + std::to_string(m.port));
  m.thread = std::thread([&m] { m.http.listen_after_bind(); });
}

std::uint16_t MetricsEndpoint::port() const {
  return static_cast<std::uint16_t>(impl_->bound);
}

void MetricsEndpoint::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->http.stop();
  impl_->thread.join();
}

}  // namespace aitw::net
