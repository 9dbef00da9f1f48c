#pragma once
// Adapts the router to the SPOP connection: one `route` message in, the ACK's set-var actions out.
// Runs on the event-loop thread; the router it points to is replaced only on that thread.

#include <cstdint>

#include "agent/router.hpp"
#include "spop/connection.hpp"

namespace spoa::agent {

struct decision_observer {
  virtual ~decision_observer() = default;
  virtual void on_decision(const answer& a, double seconds) = 0;
};

class route_handler final : public spop::notify_handler {
 public:
  explicit route_handler(router* r, decision_observer* obs = nullptr)
      : router_(r), observer_(obs) {}
  void set_router(router* r) noexcept { router_ = r; }
  void set_noop(bool noop) noexcept { noop_ = noop; }
  void on_message(const spop::message_view& msg, spop::ack_builder& ack) override;

 private:
  router* router_;
  decision_observer* observer_;
  bool noop_ = false;
  routing::key_buffer key_buf_;
};

}  // namespace spoa::agent
