#pragma once
// The load model: per-worker rates from consecutive scrapes, smoothed, turned into a health state
// and a capacity factor, and published as an immutable routing::load_view for placement.
//
// Signals (reference synapse-metrics.md §3-§4), per worker, from two consecutive successful
// scrapes a and b taken Δt = (b.now_ms − a.now_ms) / 1000 seconds apart:
//   cpu          = Δprocess_cpu_seconds_total / Δt, in cores. Synapse is one Python process under
//                  the GIL, so ~1.0 means saturated.
//   reactor lag  = Δtick_time_sum / Δtick_time_count: the mean Twisted reactor tick over the
//                  interval, in seconds (no sample when no tick completed).
//   db wait      = Δschedule_time_sum / Δschedule_time_count: seconds waiting for a DB connection
//                  per query. Reported only (status, dashboard): every worker shares one database,
//                  so a slow database makes all workers wait and moving keys would not help.
//   in flight    = the scrape's in-flight gauge (already a level, no delta needed).
// Each is smoothed by an EWMA, x ← α·sample + (1 − α)·x, starting at the first sample.
//
// Restarts: a counter that decreases drops that counter's delta; a changed
// process_start_time_seconds drops every delta of that scrape. The smoothed values and the state
// are kept (a restarted worker is still the same worker); the new values become the baseline.
//
// States (routing::worker_state), with hysteresis so a worker near a threshold does not flap:
//   unknown → healthy|hot  on the first scrape that yields a CPU or reactor-lag value (two
//                          successful scrapes), by the hot rule below;
//   healthy → hot          when cpu ≥ hot_cpu, or lag ≥ hot_reactor_lag, or (if used)
//                          in_flight ≥ hot_in_flight;
//   hot → healthy          only when cpu ≤ cool_cpu and lag ≤ cool_reactor_lag and (if used)
//                          in_flight ≤ cool_in_flight; between the bands the state holds;
//   any → stalled          at once on stall evidence: a scrape that timed out (connect or
//                          response: a stopped or GIL-starved process accepts and never
//                          answers), or a scrape whose python_twisted_reactor_last_seen ≥
//                          blocked_reactor_seconds (the metrics thread answers while the reactor
//                          is stuck — reference §1). Placement gives a stalled worker no new keys
//                          and leaves its remembered keys where they are;
//   stalled → down         once the worker has shown no life for stall_down_after_ms while the
//                          evidence continues: "life" is the last successful scrape for timeouts,
//                          the reactor's last run (now − last_seen) for a blocked reactor. Checked
//                          on every scrape result and on every publish(), so a timer calling
//                          publish() bounds the delay by its period, not by the scrape cadence;
//   stalled → healthy|hot  on the next scrape that answers in time with a running reactor (the
//                          worker never went down, so one answer is enough);
//   any → down             after down_after_failures consecutive failed scrapes (refused,
//                          reset, timed out, blocked reactor);
//   down → healthy|hot     after TWO consecutive successful scrapes: the first sets a fresh
//                          baseline (and clears the smoothed values, which describe the worker
//                          before it failed), the second gives fresh deltas. One lone success
//                          after failures is often a process that answers once while restarting
//                          or dying; the price is one extra scrape interval of recovery.
// A signal that is absent (NaN) neither makes a worker hot nor keeps it hot.
//
// Capacity (routing::worker_load::capacity, a multiplier on the configured weight):
//   u = max(cpu / hot_cpu, lag / hot_reactor_lag, in_flight / hot_in_flight if used), so u = 1
//   is the hot threshold of the most loaded signal;
//   healthy: 1 while u ≤ capacity_knee, then linear down to capacity_at_hot at u = 1;
//            never above 1: an idle-looking worker is not made more attractive than its weight,
//            because the data is one interval old and everyone would herd onto it (Mitzenmacher,
//            "How Useful Is Old Information?", IEEE TPDS 11(1), 2000). The agent's own bounded
//            load does the fine balancing; metrics only scale it down;
//   hot:     hot_capacity (small but > 0, so a pool whose workers are all hot still shares);
//   stalled: hot_capacity (> 0: it still holds its remembered keys; it takes no new ones);
//   down:    0;   unknown without data: 1.
// Unusable scrapes (HTTP errors, garbage, oversized bodies — see on_failure) publish `unknown`
// at once, with the capacity decaying as below from the last success; they never make a worker
// down (the worker answered: it is alive, only its metrics are unusable).
// Staleness: when the last successful scrape is older than stale_after_ms and the worker is not
// down (scrapes stopped or keep timing out below the down threshold), the published state is
// unknown and the capacity decays toward 1 with a half-life of stale_after_ms:
//   capacity = 1 + (fresh − 1) · 2^(−(age − stale_after_ms) / stale_after_ms),
// so stale data neither pins a worker as hot nor keeps an idle-looking one attractive.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "load/extract.hpp"
#include "load/haproxy_view.hpp"
#include "routing/load_view.hpp"

namespace spoa::load {

// The load component's options, with their documented defaults: the config file's `load:`
// section is this struct (config/config.hpp embeds it), so a default lives here only. The scrape
// settings are read by the agent's scraper, the rest by the model.
struct options {
  // 1 s / 750 ms: a stopped worker's first timed-out scrape ends at most 1.1 x 1 s (jitter) +
  // 750 ms = 1.85 s after it stopped, inside the 2 s "no new keys" target (default_config.yaml).
  std::chrono::milliseconds scrape_interval{1'000};
  std::chrono::milliseconds scrape_timeout{750};
  std::size_t max_body_bytes = 4 * 1024 * 1024;  // larger bodies are a failed scrape
  double ewma_alpha = 0.3;                       // weight of the newest sample, in (0, 1]
  double hot_cpu = 0.85;                         // cores
  double cool_cpu = 0.70;
  double hot_reactor_lag = 0.050;  // seconds per reactor tick (YAML: a duration)
  double cool_reactor_lag = 0.020;
  int down_after_failures = 3;                    // consecutive failed scrapes; values < 1 act as 1
  std::chrono::milliseconds stale_after{10'000};  // no fresh data: decay toward neutral
  double hot_in_flight = 0;   // requests; 0 = signal not used for state or capacity
  double cool_in_flight = 0;  // 0 = 0.75 x hot_in_flight
  double hot_db_busy = 0;     // fraction of database threads working; 0 = not used
  double cool_db_busy = 0;    // 0 = 0.75 x hot_db_busy
  // reactor_last_seen at or above = stall evidence (and a failed scrape); 0 = off. Healthy
  // Synapse 1.160 workers show 0.01-0.04 s (reference samples); a saturated one ticks every few
  // seconds and is hot, not stalled — hence 10 s.
  std::chrono::milliseconds reactor_stall_after{10'000};
  std::chrono::milliseconds stall_down_after{3'000};  // stalled this long without life: down
  double capacity_knee = 0.5;     // u at or below which a healthy worker has capacity 1
  double capacity_at_hot = 0.25;  // healthy capacity as u reaches 1
  double hot_capacity = 0.1;      // capacity of a hot (or stalled) worker, > 0
  // Response time relative to the worker's pool, rule by rule (load/feedback.hpp), from
  // HAProxy's sampled `response` messages: hot at this ratio, healthy again at or below the cool
  // one; 0 = not used. Without response messages the signal is absent and changes nothing.
  double hot_latency_ratio = 4;
  double cool_latency_ratio = 2;  // 0 = 0.75 x hot_latency_ratio
  // HAProxy's Prometheus exporter ("http://HOST:PORT/metrics"), scraped every scrape_interval
  // for HAProxy's own view of each server (haproxy_view.hpp); empty = not used.
  std::string haproxy_metrics;

  bool operator==(const options&) const = default;
};

struct worker_status {
  static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  routing::worker_state state = routing::worker_state::unknown;  // as last published/updated
  double cpu = nan;                                              // cores, EWMA
  double reactor_lag = nan;                                      // seconds per tick, EWMA
  double in_flight = nan;                                        // requests, EWMA
  double db_wait = nan;  // seconds of DB-connection wait per query, EWMA
  double db_busy = nan;  // fraction of the database threads working, EWMA
  double latency = nan;  // response time / the pool's, rule by rule (feedback.hpp); not smoothed
  int consecutive_failures = 0;
  std::uint64_t last_success_ms = 0;
  std::uint64_t last_scrape_ms = 0;
  double last_scrape_seconds = 0;  // duration of the last scrape
  std::uint64_t scrapes_ok = 0;
  std::uint64_t scrapes_failed = 0;
  std::string last_error;              // cleared by a good scrape
  double capacity = 1.0;               // as last published/updated
  bool stalled = false;                // stall evidence on the latest scrape (see the state table)
  std::uint64_t stalled_since_ms = 0;  // when it last showed life, while `stalled`
};

// Every load signal in one table: how it is derived from scrapes, where its smoothed value lives,
// what makes it hot, how it is reported. model.cpp (smoothing, state, capacity, change messages)
// and the agent's /metrics (one gauge per exported signal) walk it; a new signal is a row here, a
// status field and, if it has thresholds, two options above, its scrape rows in extract.hpp, and
// the options' YAML keys (config/sections.cpp, default_config.yaml).
struct signal_def {
  enum class derive : unsigned char {
    level,  // a's value on the latest scrape (a gauge)
    rate,   // Δa / Δt over two scrapes (a counter), per second
    mean,   // Δa / Δb over two scrapes (a histogram's sum and count); needs Δb > 0
    ratio,  // a / b on the latest scrape (two gauges); needs b > 0
    // Not from scrapes: set by model::set_latency from HAProxy's responses (feedback.hpp).
    external,
  };
  std::string_view name;  // in change messages, e.g. "cpu"
  derive how;
  double scrape::*a;
  double scrape::*b;               // mean and ratio only
  double worker_status::*value;    // the EWMA
  double options::*hot = nullptr;  // null: reported only, never makes a worker hot
  double options::*cool = nullptr;
  // An optional signal (hot == 0 turns it off; cool == 0 is 0.75 x hot); else always used.
  bool optional = false;
  // Change messages: "NAME VALUE UNIT" with this many decimals, always, or only while used.
  int decimals = 2;
  std::string_view unit = {};
  bool always_shown = false;
  // The agent's gauge synapse_spoa_worker_<metric> (empty: not exported) and its help text.
  std::string_view metric = {};
  std::string_view help = {};
};

inline constexpr signal_def signals[] = {
    {"cpu", signal_def::derive::rate, &scrape::cpu_seconds, nullptr, &worker_status::cpu,
     &options::hot_cpu, &options::cool_cpu, false, 2, "", true, "cpu_cores",
     "Scraped CPU use of each worker (EWMA, cores)."},
    {"lag", signal_def::derive::mean, &scrape::tick_sum, &scrape::tick_count,
     &worker_status::reactor_lag, &options::hot_reactor_lag, &options::cool_reactor_lag, false, 3,
     " s", true, "reactor_lag_seconds", "Scraped mean reactor tick time of each worker (EWMA)."},
    {"in flight", signal_def::derive::level, &scrape::in_flight, nullptr, &worker_status::in_flight,
     &options::hot_in_flight, &options::cool_in_flight, true, 1, "", true, "in_flight_requests",
     "Scraped in-flight requests of each worker (long-polls excluded)."},
    {"db wait", signal_def::derive::mean, &scrape::sched_sum, &scrape::sched_count,
     &worker_status::db_wait, nullptr, nullptr, false, 4, " s", false, "db_wait_seconds",
     "Scraped mean wait for a database connection per query of each worker (EWMA)."},
    {"db busy", signal_def::derive::ratio, &scrape::db_threads_working, &scrape::db_threads_total,
     &worker_status::db_busy, &options::hot_db_busy, &options::cool_db_busy, true, 2, "", false,
     "db_threads_busy_ratio",
     "Fraction of each worker's database threads working (synapse_threadpool_working_threads / "
     "total_threads, name=database-master; EWMA)."},
    {"latency", signal_def::derive::external, nullptr, nullptr, &worker_status::latency,
     &options::hot_latency_ratio, &options::cool_latency_ratio, true, 1, "x", false,
     "response_latency_ratio",
     "Each worker's peak-EWMA time to response headers over its pool's median, rule by rule, "
     "from HAProxy's sampled responses (long-polls excluded; absent without samples)."},
};

// One published state change, for the agent's log: the line as text and, for structured logs,
// the figures that caused it.
struct state_change {
  std::size_t worker = 0;
  std::string name;
  routing::worker_state from = routing::worker_state::unknown;
  routing::worker_state to = routing::worker_state::unknown;
  // Why, as one word: "failures" (down_after_failures consecutive failed scrapes), "no_life"
  // (stalled for stall_down_after with no sign of life), "stall" (a scrape timed out or the
  // reactor is blocked), "stale" (no successful scrape for stale_after), "unusable" (the last
  // scrape gave nothing usable), "hot" (a signal at or above its hot threshold), "cool" (every
  // signal at or below its cool threshold), "scrapes" (answering again after down, stalled or
  // unknown), "haproxy" (HAProxy reports the server MAINT or DOWN).
  std::string_view reason;
  // A change of HAProxy's own view of the server instead (from/to above unused): its state
  // before and after, e.g. UP -> DRAIN. `haproxy_change` false for a change of `to` above.
  bool haproxy_change = false;
  haproxy_state haproxy_from = haproxy_state::unknown;
  haproxy_state haproxy_to = haproxy_state::unknown;  // also set for reason "haproxy"
  // No sign of life / no successful scrape for this long (no_life, stall, stale, unusable).
  double silent_seconds = worker_status::nan;
  worker_status status;  // as published: signals, failures, last error
  std::string message;   // e.g. "room2: healthy -> hot (cpu 0.93, lag 0.012 s)"
};

// Not thread-safe: one owner (the scraper's strand) calls everything; placement only sees the
// published snapshots, which are immutable.
class model {
 public:
  // Workers are identified by index (the config's worker order); change messages name them
  // "worker<i>" or by `names`.
  model(options opts, std::size_t workers);
  model(options opts, std::vector<std::string> names);
  // Reload: a new model for a new worker list and options that keeps, by worker name, everything
  // the previous one knew (smoothed signals, baselines, failure counts, state), so a down worker
  // stays down and a hot one hot across a reload; new names start unknown.
  model(const model& previous, options opts, std::vector<std::string> names);

  // Out-of-range worker indexes are ignored.
  void on_success(std::size_t worker, const scrape& s, std::uint64_t now_ms, double scrape_seconds);
  // A failed scrape. `unreachable` (no connection: refused, reset before a response, name not
  // resolved) counts toward down. `timeout` (no answer within the scrape timeout, at connect or
  // after the request) is stall evidence: `stalled` at once, down after stall_down_after_ms (or
  // down_after_failures). `unusable` (the endpoint answered but gave nothing the model can use:
  // HTTP error, garbage, oversized body) says nothing about the worker's health, only that its
  // load is unknown: the worker is published `unknown` at once, its capacity decays toward
  // neutral as for stale data, and its keys stay.
  enum class failure { unreachable, unusable, timeout };
  void on_failure(std::size_t worker, std::string_view why, std::uint64_t now_ms,
                  double scrape_seconds, failure kind = failure::unreachable);

  // Recomputes staleness and returns the snapshot for placement; appends to `changes` one line
  // per worker whose published state changed since the previous call, e.g.
  // "room2: healthy -> hot (cpu 0.93, lag 0.012 s)".
  std::shared_ptr<const routing::load_view> publish(std::uint64_t now_ms,
                                                    std::vector<std::string>* changes = nullptr);
  // The same, with each change's figures (state_change above).
  std::shared_ptr<const routing::load_view> publish(std::uint64_t now_ms,
                                                    std::vector<state_change>* changes);

  // HAProxy's own view (load/haproxy_view.hpp), optional. `refs` by worker index: where each
  // worker is in HAProxy. A good body replaces every worker's HAProxy state; a failed scrape
  // keeps the last one, which stops counting stale_after after the last good body. publish()
  // then makes MAINT and DOWN down and DRAIN drained (routing::worker_load::drain), and reports
  // changes as "room1: HAProxy UP -> DRAIN".
  void set_haproxy_servers(std::vector<haproxy_server_ref> refs);
  void on_haproxy(std::string_view body, std::uint64_t now_ms);
  void on_haproxy_failure(std::string_view why, std::uint64_t now_ms);
  // The state publish() last applied (unknown when none or stale).
  haproxy_state haproxy(std::size_t index) const;
  struct haproxy_scrapes {
    std::uint64_t ok = 0, failed = 0;
    std::string last_error;  // cleared by a good body
  };
  const haproxy_scrapes& haproxy_status() const { return hap_scrapes_; }

  // The worker's latency ratio (feedback::latency_ratio; NaN = no comparison). A healthy or hot
  // worker's state and capacity are judged again at once, so a slow worker is hot within one
  // call, not at its next scrape. Out-of-range indexes are ignored.
  void set_latency(std::size_t worker, double ratio);

  // Out-of-range indexes get a default status.
  const worker_status& status(std::size_t worker) const;
  std::size_t size() const { return workers_.size(); }

 private:
  struct worker {
    std::string name;
    worker_status status;
    routing::worker_state health = routing::worker_state::unknown;  // from data, before staleness
    routing::worker_state published = routing::worker_state::unknown;
    bool has_prev = false;
    scrape prev;
    std::uint64_t prev_ms = 0;
    bool has_success = false;
    int successes_since_down = 0;
    double fresh_capacity = 1.0;
    bool unusable = false;  // the last scrape was `unusable`: load unknown, health not judged
    haproxy_state hap = haproxy_state::unknown;  // from HAProxy's last good body
    std::uint64_t hap_ms = 0;                    // when that body arrived
    haproxy_state hap_published = haproxy_state::unknown;
  };

  void take_deltas(worker& w, const scrape& s, std::uint64_t now_ms);
  routing::worker_state evaluate(const worker& w) const;
  // A signal takes part in state and capacity: it has thresholds and, if optional, hot > 0.
  bool used(const signal_def& sig) const;
  double cool_of(const signal_def& sig) const;
  double utilisation(const worker_status& st) const;
  double healthy_capacity(const worker_status& st) const;
  void refresh(worker& w);
  // Stall evidence at now_ms; `alive_ms` is when the worker last showed life.
  void stall(worker& w, std::uint64_t alive_ms, std::uint64_t now_ms);
  bool stall_expired(const worker& w, std::uint64_t now_ms) const;
  state_change describe(const worker& w, routing::worker_state from, std::uint64_t now_ms) const;

  options opts_;
  std::vector<worker> workers_;
  std::vector<haproxy_server_ref> hap_refs_;
  haproxy_scrapes hap_scrapes_;
};

}  // namespace spoa::load
