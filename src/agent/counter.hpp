#pragma once
// The agent's counters: written on the event-loop thread only (one writer, so a relaxed load +
// store, no lock, no allocation), read by prometheus-cpp's exposer thread (agent/metrics.cpp).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace spoa::agent {

using counter = std::atomic<std::uint64_t>;

inline void bump(counter& c, std::uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// A latency histogram over N upper bounds in seconds (the last bucket is above all of them),
// cumulated only when exported (metrics.cpp).
template <std::size_t N>
struct latency_histogram {
  std::array<counter, N + 1> buckets{};
  counter count{0}, sum_ns{0};

  void observe(const std::array<double, N>& bounds, double seconds, std::uint64_t ns) noexcept {
    std::size_t b = 0;
    while (b < N && seconds > bounds[b])
      ++b;
    bump(buckets[b]);
    bump(count);
    bump(sum_ns, ns);
  }
};

}  // namespace spoa::agent
