#include "aitw/pipeline/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace aitw::pipeline {

// Values below 2*kSub microseconds get one bucket each; above, each power of two [2^k, 2^(k+1)) is split
// into kSub equal buckets.
int LatencyHistogram::index_of(std::uint64_t us) {
  if (us < 2 * kSub) return static_cast<int>(us);
  const int msb = std::bit_width(us) - 1;    // us in [2^msb, 2^(msb+1)), msb >= kSubBits + 1
  const int shift = msb - kSubBits;          // width of one bucket in this magnitude: 2^shift
  const int magnitude = msb - kSubBits - 1;  // 0 for [128, 256)
  const int idx = 2 * kSub + magnitude * kSub + static_cast<int>((us >> shift) - kSub);
  return std::min(idx, kBuckets - 1);
}

std::uint64_t LatencyHistogram::lowest_of(int index) {
  if (index < 2 * kSub) return static_cast<std::uint64_t>(index);
  const int magnitude = (index - 2 * kSub) / kSub;
  const int sub = (index - 2 * kSub) % kSub;
  const int shift = magnitude + 1;
  return static_cast<std::uint64_t>(kSub + sub) << shift;
}

void LatencyHistogram::record(double ms) {
  const double us_d = std::max(0.0, ms * 1000.0);
  const std::uint64_t us = us_d >= 1.8e19 ? UINT64_MAX : static_cast<std::uint64_t>(std::llround(us_d));
  ++counts_[index_of(us)];
  ++count_;
  max_us_ = std::max(max_us_, us);
  sum_us_ += static_cast<double>(us);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  max_us_ = std::max(max_us_, o.max_us_);
  sum_us_ += o.sum_us_;
}

std::uint64_t LatencyHistogram::count_at_or_below(double ms) const {
  if (ms < 0) return 0;
  const int last = index_of(static_cast<std::uint64_t>(std::llround(ms * 1000.0)));
  std::uint64_t n = 0;
  for (int i = 0; i <= last; ++i) n += counts_[i];
  return n;
}

double LatencyHistogram::percentile_ms(double p) const {
  if (count_ == 0) return 0.0;
  const auto target = static_cast<std::uint64_t>(std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * count_));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= std::max<std::uint64_t>(1, target)) {
      const std::uint64_t lo = lowest_of(i);
      const std::uint64_t hi = i + 1 < kBuckets ? lowest_of(i + 1) : lo + 1;
      const double mid = (static_cast<double>(lo) + static_cast<double>(hi - 1)) / 2.0;
      return std::min(mid, static_cast<double>(max_us_)) / 1000.0;
    }
  }
  return max_ms();
}

}  // namespace aitw::pipeline
