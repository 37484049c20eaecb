#include "circuit_breaker.hpp"

#include <algorithm>

namespace aitw::registry::s3 {

bool CircuitBreaker::allow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (state_ == State::Closed) return true;
  if (state_ == State::Open) {
    if (now - opened_at_ < open_for_) return false;
    state_ = State::HalfOpen;
    trial_in_flight_ = false;
  }
  if (trial_in_flight_) return false;  // half-open: one trial at a time
  trial_in_flight_ = true;
  return true;
}

bool CircuitBreaker::on_failure(Clock::time_point now) {
  std::lock_guard lock(mu_);
  ++failures_;
  trial_in_flight_ = false;
  if (state_ == State::HalfOpen || (state_ == State::Closed && failures_ >= threshold_)) {
    state_ = State::Open;
    opened_at_ = now;
    return true;
  }
  return false;
}

void CircuitBreaker::on_success() {
  std::lock_guard lock(mu_);
  failures_ = 0;
  trial_in_flight_ = false;
  state_ = State::Closed;
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ == State::Open && now - opened_at_ >= open_for_) return State::HalfOpen;
  return state_;
}

std::chrono::milliseconds CircuitBreaker::retry_in(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ != State::Open) return std::chrono::milliseconds(0);
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(open_for_ - (now - opened_at_)));
}

const char* to_string(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::Closed:
      return "closed";
    case CircuitBreaker::State::Open:
      return "open";
    case CircuitBreaker::State::HalfOpen:
      return "half-open";
  }
  return "?";
}

}  // namespace aitw::registry::s3
