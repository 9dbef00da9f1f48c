#pragma once
// The agent's one notion of "now" for placement and the load model: milliseconds on the
// monotonic clock (never goes back, unaffected by wall-clock changes).

#include <chrono>
#include <cstdint>

namespace spoa::agent {

// Nanoseconds on the same clock: the decision handler's clock (decision::clock_fn).
inline std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

inline std::uint64_t now_ms() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace spoa::agent
