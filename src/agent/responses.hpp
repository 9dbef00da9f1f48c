#pragma once
// The shell around load::feedback (load/feedback.hpp): matches each sampled `response` message
// from HAProxy to a worker (by pool and server name) and a rule (by name), records it, and once
// per misroute interval logs the rules that look routed to the wrong pool. Event-loop thread
// only; rebuilt on reload.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/metrics.hpp"
#include "config/config.hpp"
#include "decision/handler.hpp"
#include "load/feedback.hpp"
#include "routing/route_table.hpp"

namespace spoa::agent {

class response_feedback final : public decision::response_observer {
 public:
  using clock_ms = std::uint64_t (*)();
  response_feedback(const config::agent_config& cfg, const routing::route_table& table,
                    agent_metrics& metrics, clock_ms now_ms);
  // Reload: new workers and rules; what was learnt starts again (a minute of samples at most).
  void reconfigure(const config::agent_config& cfg, const routing::route_table& table);

  void on_response(const decision::response_report& r) override;

  // The latency ratio of every worker, for load::model::set_latency.
  double latency_ratio(std::size_t worker, std::uint64_t now_ms) const {
    return feedback_.latency_ratio(worker, now_ms);
  }
  // Called once a second: at the end of each misroute interval, logs every suspect (a warning
  // with the rule, worker and figures) and updates the exported flags.
  void check_misroutes(std::uint64_t now_ms);

 private:
  agent_metrics& metrics_;
  clock_ms now_ms_;
  load::feedback feedback_;
  // HAProxy server name -> (pool, worker index); a name may be used in several backends.
  std::map<std::string, std::vector<std::pair<std::string, std::size_t>>, std::less<>> servers_;
  std::map<std::string, std::size_t, std::less<>> rules_;
  std::vector<std::string> rule_names_, worker_names_, worker_pools_;

  static load::feedback build(const config::agent_config& cfg, const routing::route_table& t);
};

}  // namespace spoa::agent
