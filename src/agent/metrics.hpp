#pragma once
// The agent's own metrics, exported with prometheus-cpp on `metrics_listen`.
//
// Recording happens on the event-loop thread only, into plain relaxed atomics (one writer, so a
// load + store, no lock, no allocation); prometheus-cpp's exposer thread reads them in Collect().
// prometheus-cpp's own Histogram takes a mutex per Observe(), so the decision-latency histogram
// is implemented here the same way as the counters.

#include <array>
#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "agent/counter.hpp"
#include "agent/shared_store.hpp"
#include "agent/spop_server.hpp"
#include "config/config.hpp"
#include "decision/handler.hpp"
#include "decision/router.hpp"
#include "load/feedback.hpp"
#include "load/model.hpp"
#include "routing/placement.hpp"

namespace spoa::agent {

class agent_metrics final : public prometheus::Collectable,
                            public decision::decision_observer,
                            public spop_observer {
 public:
  // `routes`: the router's compiled table (its rule names label the response counts).
  agent_metrics(const config::agent_config& cfg, const routing::route_table& routes);
  // Reload: new label sets (pools, workers); counts start again for the new set.
  void reconfigure(const config::agent_config& cfg, const routing::route_table& routes);

  // Hot path (event-loop thread).
  void on_decision(const decision::answer& a, double seconds) override;
  void on_accept(bool accepted) override;
  void on_close(spop::status why) override;
  void on_frames(const spop::connection_counters& delta);

  // Off the hot path (event-loop thread), after each load publish / periodically.
  void update_load(const load::model& model);
  void update_placement(const decision::router& r);

  // A sampled `response` message the agent matched to a worker and rule (agent.cpp): counted
  // with its weight by rule, worker and status class (load::status_class, 0..4); its time to
  // headers (NaN: none, or a long-poll) into the worker's histogram.
  void on_response(std::size_t worker, std::size_t rule, int cls, double weight, double seconds);
  // One that could not be matched: "unknown_worker", "unknown_rule", "bad_status".
  enum class response_drop { unknown_worker, unknown_rule, bad_status };
  void on_response_dropped(response_drop why);
  // The misroute suspects of the last completed interval (load::feedback::scan).
  void set_misroutes(const std::vector<load::misroute>& suspects);

  // Decisions with reason `r` counted for worker `w` (index into the config's workers) since the
  // last reconfigure; 0 out of range. For the log's move summary (agent.cpp).
  std::uint64_t decisions(std::size_t w, routing::reason r) const noexcept;

  // The shared store's counters (shared_store.hpp); exported only once set.
  // `synapse-spoa ctl drain`: the workers drained at run time (exported one gauge each).
  void set_runtime_drains(std::vector<std::string> workers) {
    std::lock_guard<std::mutex> lock(drains_mu_);
    runtime_drains_ = std::move(workers);
  }
  void set_shared(std::shared_ptr<const shared_counters> c) {
    std::atomic_store(&shared_, std::move(c));
  }

  std::vector<prometheus::MetricFamily> Collect() const override;

  // Time to response headers as HAProxy saw it (synapse_spoa_worker_response_seconds).
  static constexpr std::array<double, 13> response_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1,     2.5,  5,     10,   30,  60};
  static constexpr std::array<double, 12> latency_buckets{1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6,
                                                          1e-5, 2.5e-5, 5e-5, 1e-4, 1e-3,   1e-2};

 private:
  static constexpr std::size_t k_reasons = routing::reason_count;
  static constexpr std::size_t k_statuses = 100;  // SPOP status codes 0..99

  // Everything whose shape depends on the config; swapped whole on reload.
  struct state {
    // decision slots: one per worker (index = worker index), then one per pool (decisions with
    // no worker)
    std::vector<std::string> slot_pool, slot_backend, slot_server;
    std::size_t pool_base = 0;             // first of the per-pool slots
    std::unique_ptr<counter[]> decisions;  // slot * k_reasons + reason
    std::vector<std::string> worker_names;
    bool haproxy_view = false;  // load.haproxy_metrics is set: export HAProxy's view
    counter haproxy_ok{0}, haproxy_failed{0};
    struct worker_gauges {
      // One per row of load::signals, in its order.
      std::array<std::atomic<double>, std::size(load::signals)> signal{};
      std::atomic<double> capacity{1}, scrape_seconds{0};
      std::atomic<double> last_success{0};
      counter scrapes_failed{0}, scrapes_ok{0};
      std::atomic<int> state{0};
      std::atomic<int> haproxy{0};  // load::haproxy_state
      counter keys{0};
      latency_histogram<response_buckets.size()> response;
    };
    std::unique_ptr<worker_gauges[]> workers;
    // Responses by rule x worker x status class (rule * workers + worker) * 5 + class, weighted
    // estimates; misroute flags per rule x worker cell (1 = suspected in the last interval).
    std::vector<std::string> rule_names;
    std::unique_ptr<std::atomic<double>[]> responses;
    std::unique_ptr<std::atomic<std::uint8_t>[]> misroute;
  };

  std::shared_ptr<state> build(const config::agent_config& cfg,
                               const routing::route_table& routes) const;
  void collect_responses(const state& st, std::vector<prometheus::MetricFamily>& out) const;

  std::shared_ptr<state> state_;
  std::string version_;
  counter accepted_{0}, refused_{0}, open_{0};
  std::array<counter, k_statuses> closes_{};
  counter hello_in_{0}, notify_in_{0}, disconnect_in_{0}, unknown_in_{0}, messages_in_{0};
  counter hello_out_{0}, ack_out_{0}, disconnect_out_{0}, actions_dropped_{0};
  latency_histogram<latency_buckets.size()> latency_;
  std::array<counter, 3> responses_dropped_{};
  counter responses_recorded_{0};
  counter aff_entries_{0};
  std::array<counter, routing::move_cause_count> moves_{};
  counter evict_lru_{0}, evict_ttl_{0};
  std::shared_ptr<const shared_counters> shared_;
  mutable std::mutex drains_mu_;
  std::vector<std::string> runtime_drains_;  // guarded by drains_mu_
};

}  // namespace spoa::agent
