#include "aitw/kernel/fast_math.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace aitw::kernel {

TEST(FastMath, ExpRelativeErrorOverTheFullRange) {
  double worst = 0;
  for (float x = -87.f; x <= 88.f; x += 0.001f) {
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(fast_exp(x) - ref) / ref);
  }
  EXPECT_LT(worst, 2e-7);
}

TEST(FastMath, ExpSaturatesInsteadOfOverflowing) {
  EXPECT_TRUE(std::isfinite(fast_exp(1000.f)));
  EXPECT_GT(fast_exp(1000.f), 1e38f);
  EXPECT_GE(fast_exp(-1000.f), 0.f);
  EXPECT_LT(fast_exp(-1000.f), 1e-37f);
  EXPECT_FLOAT_EQ(fast_exp(0.f), 1.f);
}

TEST(FastMath, NaNDoesNotReachTheIntegerConversion) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isfinite(fast_exp(nan)));  // clamped, not undefined behaviour
  float in[3] = {nan, 1.f, -1.f}, out[3];
  silu(in, out, 3);
  EXPECT_TRUE(std::isnan(out[0]));  // x * sigmoid(x) still propagates it
  EXPECT_NEAR(out[1], 1.f / (1.f + std::exp(-1.f)), 1e-6);
}

TEST(FastMath, ArrayVersionsMatchScalarReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 6.f);
  std::vector<float> x(1027);  // odd length: vector body and scalar tail
  for (auto& v : x) v = d(rng);
  std::vector<float> e = x, s(x.size());
  exp_inplace(e.data(), e.size());
  silu(x.data(), s.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(e[i], std::exp(x[i]), 2e-7 * std::exp(x[i]) + 1e-30) << x[i];
    const double ref = x[i] / (1.0 + std::exp(-static_cast<double>(x[i])));
    EXPECT_NEAR(s[i], ref, 1e-6 * std::max(1.0, std::abs(ref))) << x[i];
  }
  silu(x.data(), x.data(), x.size());  // in place
  EXPECT_EQ(x, s);
}

}  // namespace aitw::kernel
