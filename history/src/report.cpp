#include "aitw/history/report.hpp"

#include <ctime>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "codec.hpp"

namespace aitw::history {
namespace {

// Opens the store the job names (never "none": there is nothing to read) and runs `body` on it.
int with_sink(const ReportJob& job, std::ostream& err, const std::function<void(Sink&)>& body) {
  const std::string uri = resolve_uri(job.uri);
  try {
    if (uri == "none") {
      err << "aitw: history is off (--history none): nothing to read\n";
      return 2;
    }
    // Reading must not create an empty database where none was written.
    if (!uri.starts_with("mongodb")) {
      const std::string path = uri.starts_with("sqlite:") ? uri.substr(7) : uri;
      if (path.find("://") == std::string::npos && !std::filesystem::exists(path)) {
        err << "aitw: no history at " << path << " (aitw serve writes it; --history or $AITW_HISTORY)\n";
        return 1;
      }
    }
    const auto sink = open_sink(uri);
    body(*sink);
    return 0;
  } catch (const std::invalid_argument& e) {
    err << "aitw: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "aitw: " << e.what() << "\n";
    return 1;
  }
}

std::string fixed(double v, int digits = 1) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace

std::string iso_utc(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int print_sessions(const ReportJob& job, std::ostream& out, std::ostream& err) {
  return with_sink(job, err, [&](Sink& sink) {
    const auto rows = sink.sessions(job.query);
    if (job.json) {
      auto a = nlohmann::json::array();
      for (const auto& r : rows) a.push_back(to_json(r));
      out << a.dump(2) << "\n";
      return;
    }
    out << std::left << std::setw(21) << "ENDED" << std::setw(24) << "WORKER" << std::setw(18) << "CLIENT"
        << std::setw(16) << "MODEL" << std::right << std::setw(8) << "RECV" << std::setw(8) << "DONE"
        << std::setw(8) << "DROP" << std::setw(6) << "ERR" << std::setw(9) << "P95_MS"
        << "  END\n";
    for (const auto& e : rows) {
      const auto& r = e.record;
      out << std::left << std::setw(21) << iso_utc(r.ended_ms) << std::setw(24) << e.worker_id
          << std::setw(18) << r.client_id << std::setw(16) << r.model << std::right << std::setw(8)
          << r.frames_received << std::setw(8) << r.frames_processed << std::setw(8) << r.frames_dropped
          << std::setw(6) << r.errors << std::setw(9) << fixed(r.p95_ms) << "  " << r.end_reason << "\n";
    }
    out << rows.size() << " session(s)\n";
  });
}

int print_stats(const ReportJob& job, std::ostream& out, std::ostream& err) {
  return with_sink(job, err, [&](Sink& sink) {
    const auto rows = sink.stats(job.query);
    if (job.json) {
      auto a = nlohmann::json::array();
      for (const auto& r : rows) a.push_back(to_json(r));
      out << a.dump(2) << "\n";
      return;
    }
    out << std::left << std::setw(16) << "MODEL" << std::setw(18) << "CLIENT" << std::right << std::setw(9)
        << "SESSIONS" << std::setw(10) << "FRAMES" << std::setw(10) << "DONE" << std::setw(8) << "DROP%"
        << std::setw(14) << "WORST_P95_MS"
        << "\n";
    for (const auto& r : rows)
      out << std::left << std::setw(16) << r.model << std::setw(18) << r.client << std::right << std::setw(9)
          << r.sessions << std::setw(10) << r.frames_received << std::setw(10) << r.frames_processed
          << std::setw(8) << fixed(r.drop_percent()) << std::setw(14) << fixed(r.worst_p95_ms) << "\n";
  });
}

int print_fleet(const ReportJob& job, std::ostream& out, std::ostream& err) {
  return with_sink(job, err, [&](Sink& sink) {
    const auto rows = sink.workers();
    if (job.json) {
      auto a = nlohmann::json::array();
      for (const auto& w : rows) a.push_back(to_json(w));
      out << a.dump(2) << "\n";
      return;
    }
    const auto now = net::unix_ms();
    out << std::left << std::setw(24) << "WORKER" << std::setw(16) << "STATE" << std::setw(22) << "LAST_SEEN"
        << std::right << std::setw(8) << "AGO_S" << std::setw(8) << "MODELS" << std::setw(10) << "SESSIONS"
        << std::setw(8) << "TOTAL"
        << "  VERSION\n";
    for (const auto& w : rows)
      out << std::left << std::setw(24) << w.worker_id << std::setw(16) << w.state << std::setw(22)
          << iso_utc(w.last_seen_ms) << std::right << std::setw(8) << (now - w.last_seen_ms) / 1000
          << std::setw(8) << w.models_loaded << std::setw(10) << w.sessions_active << std::setw(8)
          << w.sessions_total << "  " << w.version << "\n";
  });
}

}  // namespace aitw::history
