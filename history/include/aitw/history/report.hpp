#pragma once
// What `aitw history`, `aitw history stats` and `aitw fleet` print: sessions newest first, aggregates per
// model and client, workers with their state and when they were last seen. Tables for people, --json for
// programs.
#include <iosfwd>
#include <string>

#include "aitw/history/history.hpp"

namespace aitw::history {

struct ReportJob {
  std::string uri;  // --history (else $AITW_HISTORY, else the default SQLite file)
  Query query;
  bool json = false;
};

// Each returns the exit status: 0, or 1 with a message naming the store and the cause on `err` when it
// cannot be read (2 for a malformed URI).
int print_sessions(const ReportJob& job, std::ostream& out, std::ostream& err);
int print_stats(const ReportJob& job, std::ostream& out, std::ostream& err);
int print_fleet(const ReportJob& job, std::ostream& out, std::ostream& err);

// 2026-12-01T21:09:15Z
std::string iso_utc(std::int64_t unix_ms);

}  // namespace aitw::history
