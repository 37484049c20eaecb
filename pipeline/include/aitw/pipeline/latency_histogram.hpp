#pragma once
// A fixed-size log-linear latency histogram (HdrHistogram's layout with 64 sub-buckets per power of two:
// <= 1.6 % relative error), so that percentiles over hours of frames cost constant memory instead of a
// vector that grows forever. Values are milliseconds, kept in microseconds internally, up to ~1.2 hours.
#include <array>
#include <cstdint>

namespace aitw::pipeline {

class LatencyHistogram {
 public:
  void record(double ms);
  void merge(const LatencyHistogram& other);
  void reset() { *this = LatencyHistogram(); }

  std::uint64_t count() const { return count_; }
  double max_ms() const { return max_us_ / 1000.0; }
  double mean_ms() const { return count_ ? sum_us_ / 1000.0 / static_cast<double>(count_) : 0.0; }
  // The smallest recorded value v such that `p` percent of the values are <= v (bucket midpoint, clamped
  // to the exact max). 0 when empty.
  double percentile_ms(double p) const;
  // How many recorded values are <= ms (bucket resolution), for cumulative (Prometheus) buckets.
  std::uint64_t count_at_or_below(double ms) const;
  double sum_ms() const { return sum_us_ / 1000.0; }

 private:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMagnitudes = 26;  // 2^32 us ~ 71 minutes
  static constexpr int kBuckets = 2 * kSub + (kMagnitudes - 1) * kSub;
  static int index_of(std::uint64_t us);
  static std::uint64_t lowest_of(int index);

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_us_ = 0;
  double sum_us_ = 0;
};

}  // namespace aitw::pipeline
