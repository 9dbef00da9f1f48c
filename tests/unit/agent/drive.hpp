#pragma once
// Driving an io_context in the shell's loopback tests: no sleeps for correctness, only a guard
// against a hang.

#include <chrono>
#include <functional>

#include "agent/asio.hpp"

namespace spoa::agent::test {

// Runs handlers until `done` holds; false after `limit`.
inline bool drive(asio::io_context& io, const std::function<bool()>& done,
                  std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Everything left runs to completion: no timer, socket or coroutine may keep the loop alive.
inline bool drain(asio::io_context& io,
                  std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  io.restart();
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (io.run_one_for(std::chrono::milliseconds(50)) == 0 && io.stopped()) return true;
  }
  return false;
}

}  // namespace spoa::agent::test
