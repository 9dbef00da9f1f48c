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

// One sampled `response` message (haproxy.cfg, spoe-synapse.conf): what HAProxy saw of a
// worker's answer to a request the agent routed. Views into the frame, valid during the call.
struct response_report {
  std::string_view pool, server, rule;  // as the agent set them on the request
  int status = 0;                       // HTTP status; 0 when absent
  // Microseconds from just after the agent's answer to the response headers (queue, connect
  // and the worker's own time); < 0 when absent.
  std::int64_t header_us = -1;
  bool long_poll = false;  // the agent marked the request a long-poll (?timeout=N, N > 0)
  int percent = 100;       // the sampling rate of non-5xx responses, 1..100
};

struct response_observer {
  virtual ~response_observer() = default;
  virtual void on_response(const response_report& r) = 0;
};

// Monotonic nanoseconds (the agent passes steady_clock); placement gets them as milliseconds.
using clock_fn = std::uint64_t (*)() noexcept;

class handler final : public spop::notify_handler {
 public:
  handler(router* r, clock_fn now_ns, decision_observer* obs = nullptr)
      : router_(r), now_ns_(now_ns), observer_(obs) {}
  // Benchmark mode: every message is answered with a fixed route, without deciding.
  void set_noop(bool noop) noexcept { noop_ = noop; }
  // Receives the `response` messages; without one they are acknowledged and dropped.
  void set_response_observer(response_observer* o) noexcept { responses_ = o; }
  void on_message(const spop::message_view& msg, spop::ack_builder& ack) override;

 private:
  void on_response(const spop::message_view& msg);

  router* router_;
  clock_fn now_ns_;
  decision_observer* observer_;
  response_observer* responses_ = nullptr;
  bool noop_ = false;
  routing::key_buffer key_buf_;
};

}  // namespace spoa::decision
