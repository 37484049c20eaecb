#include "aitw/base/backoff.hpp"

#include <algorithm>

namespace aitw {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(0))),
      max_(std::max(max, initial_)),
      bound_(initial_),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  const std::int64_t d = bound_.count();
  std::uniform_int_distribution<std::int64_t> jitter(d / 2, d);
  const std::chrono::milliseconds wait(d > 0 ? jitter(rng_) : 0);
  bound_ = std::min(max_, bound_ * 2);
  return wait;
}

}  // namespace aitw
