#pragma once
// The state of one simulated Synapse worker, and its /metrics exposition. Pure: time is passed
// in (seconds on a monotonic clock, plus the wall clock once for process_start_time_seconds), so
// every number it produces can be tested exactly.
//
// Load model. A Synapse process is one Python reactor thread (the GIL), so a worker is simulated
// as `cores` (default 1) FIFO servers: a request arriving at t waits until a core is free, then
// holds it for its cost = cpu_per_request x factor (factor > 1 only in `slow` mode). It is "in
// flight" from arrival to finish. So a worker pushed past 1/cost requests per second shows what a
// real hot worker shows: CPU rate pinned near 1, in-flight counts and latency growing, long
// reactor ticks. cores == 0 means unlimited servers: every request finishes cost after arrival.
//
// Simulated CPU (cores > 0) is exact at any instant: the cost of everything scheduled minus the
// part of the backlog still in the future:  cpu(t) = scheduled - sum_i max(0, busy_until_i - t).
// process_cpu_seconds_total adds an idle baseline of idle_cpu_rate x uptime.
//
// Reactor ticks (python_twisted_reactor_tick_time). On each scrape, the time since the previous
// one is filled with ticks. Utilisation u over that interval is the simulated CPU rate per core
// plus the idle rate, clamped to [0, 1]. The mean tick duration is
//     d(u) = min(5 s, 0.001 s / max(0.0002, (1 - u)^2))
// (1 ms idle, 4 ms at u = 0.5, 25 ms at 0.8, 100 ms at 0.9, 400 ms at 0.95, 5 s from ~0.986),
// steeper than 1/(1-u) so a saturated worker shows the "ticks above 0.1 s" signal. Ticks happen at
// min(100, 1/d) per second (fractions carry over to the next scrape); a batch of n ticks is spread
// over the buckets as an exponential distribution of mean d, deterministically:
// cumulative(le) = floor(n (1 - exp(-le / d))), sum += n d. python_twisted_reactor_last_seen is
// the time since the last whole tick.
//
// DB pool wait (synapse_storage_schedule_time): one observation per completed request of
// 0.0002 s + 0.1 x the time the request queued for a core, so it too rises with load.
//
// Exposition. scrape() writes a subset of what real Synapse 1.160 writes, with the same family
// names, order, types, HELP texts, label names and histogram buckets (pinned against the real
// bodies in tests/unit/load/real/ by sim_model_test.cpp): server_name on synapse_* (not on
// synapse_build_info), no labels on process_* and python_*; the in-flight LaterGauge has no
// sample at all when nothing is in flight; synapse_notifier_listeners counts the /sync and
// /events requests in flight.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/exposition.hpp"

namespace spoa::sim {

enum class worker_mode { normal, slow, hung, down, garbage, huge };

std::optional<worker_mode> parse_mode(std::string_view text);
std::string_view mode_name(worker_mode mode);

// The method label: the usual HTTP verbs as sent, anything else "OTHER", so junk methods cannot
// grow the label space without bound.
std::string_view method_label(std::string_view method);
// Synapse's servlet class name for a raw target (query ignored), from a coarse table, e.g.
// RoomMessageListRestServlet for /_matrix/client/v3/rooms/R/messages, FederationSendServlet for
// /_matrix/federation/v1/send/T. A path no entry claims gets the class of the resource Synapse
// would have given it (ClientRestResource, TransportLayerServer, MediaRepositoryResource, else
// JsonResource), which is what real Synapse labels its 404s with.
std::string_view servlet_for_target(std::string_view target);
// Synapse's `tag` label for /sync: sync_v2:initial_sync without `since`, else
// sync_v2:full_state_sync with full_state=true, else sync_v2:incremental_sync; "" elsewhere.
std::string_view tag_for(std::string_view servlet, std::string_view target);

struct model_params {
  std::string name;
  std::string server_name = "example.org";
  double cpu_per_request = 0.002;  // seconds of simulated CPU per request in normal mode
  unsigned cores = 1;              // 0: unlimited (no queueing)
  double idle_cpu_rate = 0.01;     // baseline CPU seconds per second
};

// One admitted request. Times are on the model's monotonic clock.
struct ticket {
  double arrival = 0;
  double start = 0;   // when a core took it
  double finish = 0;  // when its response is due
  double cost = 0;
  std::string method;
  std::string servlet;
  std::string tag;
};

struct worker_stats {
  std::uint64_t requests = 0;  // requests received (not counting /health)
  std::int64_t in_flight = 0;
  worker_mode mode = worker_mode::normal;
  double factor = 1;
};

class worker_model {
 public:
  worker_model(model_params params, double now, double wall_now);

  // Counts a request and schedules it; the caller answers it at ticket.finish.
  ticket admit(std::string_view method, std::string_view target, double now);
  // The response went out with `code`.
  void complete(const ticket& t, int code, double now);
  // The request was dropped without a response (connection closed by `down`).
  void abandon(const ticket& t, double now);
  // Forgets the queued work still in the future (used when the worker goes down).
  void drop_backlog(double now);

  void set_mode(worker_mode mode, double factor);
  worker_stats stats() const;
  double simulated_cpu(double now) const;
  const model_params& params() const { return params_; }

  // Advances the reactor-tick simulation to `now` and returns the full exposition.
  // `open_fds` is reported as process_open_fds.
  std::string scrape(double now, int open_fds);

  static double tick_duration(double utilisation);

 private:
  void advance_ticks(double now);

  model_params params_;
  double start_ = 0;
  double start_wall_ = 0;
  worker_mode mode_ = worker_mode::normal;
  double factor_ = 1;

  std::vector<double> busy_until_;  // per core
  double scheduled_cost_ = 0;       // cores > 0: cost of everything ever scheduled
  double credited_cost_ = 0;        // cores == 0: cost of what finished or was abandoned

  std::uint64_t requests_total_ = 0;
  std::int64_t in_flight_total_ = 0;
  using pair_key = std::array<std::string, 2>;
  using quad_key = std::array<std::string, 4>;
  std::map<pair_key, std::uint64_t> received_;   // {method, servlet}
  std::map<pair_key, std::int64_t> in_flight_;   // {method, servlet}
  std::map<pair_key, std::uint64_t> responses_;  // {code, method}
  std::map<quad_key, histogram> response_time_;  // {code, method, servlet, tag}
  histogram schedule_time_{prometheus_default_buckets()};

  histogram ticks_{reactor_tick_buckets()};
  double last_tick_update_ = 0;
  double cpu_at_last_tick_update_ = 0;
  double tick_carry_ = 0;
  double last_seen_ = 0;
  std::int64_t db_pool_threads_ = 0;  // synapse_threadpool_total_threads: never shrinks
};

}  // namespace spoa::sim
