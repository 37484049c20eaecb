#pragma once
// The S3 store's circuit breaker: a store that keeps failing is not hammered by every caller (each of
// which would otherwise wait out its own timeouts and retries); calls fail fast until it may be back.
#include <chrono>
#include <mutex>

namespace aitw::registry::s3 {

// closed -> (failure_threshold consecutive failed calls) -> open -> (open_for) -> half-open: one trial
// call; success closes, failure opens again. While open, calls fail at once without touching the network.
class CircuitBreaker {
 public:
  enum class State { Closed, Open, HalfOpen };
  using Clock = std::chrono::steady_clock;
  CircuitBreaker(int failure_threshold, std::chrono::milliseconds open_for)
      : threshold_(failure_threshold), open_for_(open_for) {}
  // false = open: fail fast. true = go ahead (in half-open only the first caller gets true).
  bool allow(Clock::time_point now = Clock::now());
  // Returns true when this failure opened the breaker (to log it once).
  bool on_failure(Clock::time_point now = Clock::now());
  void on_success();
  State state(Clock::time_point now = Clock::now()) const;
  std::chrono::milliseconds retry_in(Clock::time_point now = Clock::now()) const;

 private:
  mutable std::mutex mu_;
  int threshold_;
  std::chrono::milliseconds open_for_;
  int failures_ = 0;
  State state_ = State::Closed;
  bool trial_in_flight_ = false;
  Clock::time_point opened_at_{};
};
const char* to_string(CircuitBreaker::State s);

}  // namespace aitw::registry::s3
