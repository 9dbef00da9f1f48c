#pragma once
// The router behind the SPOP connection: one `route` message in, the ACK's set-var actions out.
// Pure: the shell passes the monotonic clock in (a plain function, so tests and offline tools can
// pass their own), and feeds the connection bytes.

#include <cstdint>

#include "decision/router.hpp"
#include "spop/connection.hpp"

namespace spoa::decision {

struct decision_observer {
  virtual ~decision_observer() = default;
  virtual void on_decision(const answer& a, double seconds) = 0;
};

// Monotonic nanoseconds (the agent passes steady_clock); placement gets them as milliseconds.
using clock_fn = std::uint64_t (*)() noexcept;

class handler final : public spop::notify_handler {
 public:
  handler(router* r, clock_fn now_ns, decision_observer* obs = nullptr)
      : router_(r), now_ns_(now_ns), observer_(obs) {}
  // Benchmark mode: every message is answered with a fixed route, without deciding.
  void set_noop(bool noop) noexcept { noop_ = noop; }
  void on_message(const spop::message_view& msg, spop::ack_builder& ack) override;

 private:
  router* router_;
  clock_fn now_ns_;
  decision_observer* observer_;
  bool noop_ = false;
  routing::key_buffer key_buf_;
};

}  // namespace spoa::decision
