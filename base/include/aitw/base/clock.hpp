#pragma once
// The monotonic clock every timestamp of the pipeline and the protocol is taken from
// (Frame.ts_mono_ns, latencies): steady_clock in nanoseconds.
#include <chrono>
#include <cstdint>

namespace aitw {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace aitw
