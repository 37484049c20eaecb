#pragma once
// Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling from `initial` up to
// `max`, so clients retrying a restarted server (or a store) do not stampede it in step.
#include <chrono>
#include <cstdint>
#include <random>

namespace aitw {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  // The next delay to wait; doubles the bound for the one after.
  std::chrono::milliseconds next();
  // Back to `initial` (after a success).
  void reset() { bound_ = initial_; }
  std::chrono::milliseconds bound() const { return bound_; }

 private:
  std::chrono::milliseconds initial_, max_, bound_;
  std::mt19937_64 rng_;
};

}  // namespace aitw
