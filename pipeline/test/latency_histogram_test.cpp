#include "aitw/pipeline/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <random>

namespace aitw::pipeline {

TEST(LatencyHistogram, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile_ms(95), 0.0);
  EXPECT_EQ(h.max_ms(), 0.0);
}

TEST(LatencyHistogram, PercentilesWithinBucketPrecision) {
  LatencyHistogram h;
  for (int ms = 1; ms <= 1000; ++ms) h.record(ms);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.percentile_ms(50), 500, 500 * 0.016);
  EXPECT_NEAR(h.percentile_ms(95), 950, 950 * 0.016);
  EXPECT_NEAR(h.percentile_ms(99), 990, 990 * 0.016);
  EXPECT_DOUBLE_EQ(h.percentile_ms(100), 1000);
  EXPECT_DOUBLE_EQ(h.max_ms(), 1000);
  EXPECT_NEAR(h.mean_ms(), 500.5, 1e-9);
}

TEST(LatencyHistogram, SmallValuesAreExactToTheMicrosecond) {
  LatencyHistogram h;
  h.record(0.042);
  h.record(0.1);
  EXPECT_DOUBLE_EQ(h.percentile_ms(50), 0.042);
  EXPECT_DOUBLE_EQ(h.percentile_ms(100), 0.1);
}

TEST(LatencyHistogram, MatchesSortedPercentilesOnRandomData) {
  std::mt19937 rng(5);
  std::lognormal_distribution<double> d(3.5, 0.6);  // ~33 ms median, long tail
  LatencyHistogram h;
  std::vector<double> v;
  for (int i = 0; i < 20000; ++i) {
    v.push_back(d(rng));
    h.record(v.back());
  }
  std::sort(v.begin(), v.end());
  for (double p : {50.0, 90.0, 95.0, 99.0, 99.9}) {
    const double exact = v[static_cast<std::size_t>(std::ceil(p / 100 * v.size())) - 1];
    EXPECT_NEAR(h.percentile_ms(p), exact, exact * 0.016 + 0.001) << "p" << p;
  }
}

TEST(LatencyHistogram, HugeAndNegativeValuesAreClamped) {
  LatencyHistogram h;
  h.record(-5);
  h.record(1e12);  // beyond the range: lands in the last bucket, max stays exact
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.percentile_ms(1), 0.0);
  EXPECT_DOUBLE_EQ(h.max_ms(), 1e12);
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a, b;
  for (int i = 0; i < 10; ++i) a.record(10);
  for (int i = 0; i < 10; ++i) b.record(20);
  a.merge(b);
  EXPECT_EQ(a.count(), 20u);
  EXPECT_NEAR(a.percentile_ms(50), 10, 0.2);
  EXPECT_NEAR(a.percentile_ms(100), 20, 0.3);
}

}  // namespace aitw::pipeline
