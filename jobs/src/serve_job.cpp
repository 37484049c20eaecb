#include "aitw/jobs/serve.hpp"

#include <pthread.h>

#include <csignal>
#include <iostream>
#include <memory>

#include "aitw/base/log.hpp"
#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/net/metrics.hpp"
#include "auth_token.hpp"

namespace aitw::jobs {

int run_serve(ServeJob job) {
  // A wrong $AITW_CONV_ISA or $AITW_PARALLEL would fail every Init: refuse to start instead (exit 2, naming
  // it).
  try {
    if (kernel::aitw_convolution_active()) (void)kernel::conv_default_isa();
    (void)kernel::parallel_loops();
  } catch (const std::exception& e) {
    std::cerr << "aitw serve: " << e.what() << "\n";
    return 2;
  }
  if (!job.auth_token_file.empty()) {
    const auto token = load_token_file(job.auth_token_file);
    if (!token) return 2;
    job.server.auth_token = *token;
  }
  // Blocked before the server starts a thread, so that every thread inherits the mask and only sigwait
  // below takes the signals.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::unique_ptr<history::ServeHistory> hist;
  try {
    hist = history::ServeHistory::open(job.history, job.server);
  } catch (const std::invalid_argument& e) {
    std::cerr << "aitw serve: " << e.what() << "\n";
    return 2;
  }
  net::Server server(job.server);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::cerr << "aitw serve: " << e.what() << "\n";
    return 2;
  }
  if (hist) hist->attach(server);
  std::unique_ptr<net::MetricsEndpoint> metrics;
  if (job.metrics) {
    try {
      metrics = std::make_unique<net::MetricsEndpoint>(server, job.metrics->host, job.metrics->port);
      if (hist) metrics->add_metrics([h = hist.get()] { return h->metrics_text(); });
      metrics->start();
      log_info("metrics on http://" + job.metrics->str() + "/metrics");
    } catch (const std::exception& e) {
      std::cerr << "aitw serve: " << e.what() << "\n";
      if (hist) hist->stop();  // its thread reads the server's stats: before the server goes
      return 2;
    }
  }
  int sig = 0;
  sigwait(&set, &sig);
  log_info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining (at most " +
           std::to_string(job.server.drain_timeout.count()) + " ms), then stopping");
  // The metrics endpoint stays up through the drain: /readyz answers 503 "draining" to the balancer.
  server.stop();
  if (metrics) metrics->stop();
  if (hist) hist->stop();
  log_info("stopped");
  return 0;
}

}  // namespace aitw::jobs
