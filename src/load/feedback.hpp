#pragma once
// Response feedback: what HAProxy saw of the workers' answers, sampled by haproxy.cfg's
// `response` SPOE message (the server that answered, its status, the time to its response
// headers, and the rule the agent routed by). Two uses:
//
// Latency as a load signal. Per worker and rule, a peak-EWMA of the time to response headers
// (Finagle's and Linkerd's "peak EWMA"): a sample above the estimate replaces it at once, a
// sample below pulls it down with weight 1 − e^(−Δt/decay), Δt the time since the cell's last
// sample. Long-polls (/sync, /events with `timeout`) are excluded: they wait on purpose.
// A worker's latency ratio compares it with its own pool, rule by rule:
//   ratio_r = cost(w, r) / max(median over the pool's other workers of cost(v, r), floor)
// over the rules where w and at least one other worker of its pool have a fresh cell (at least
// min_samples samples, decayed, and a sample within 3 × decay); the worker's ratio is the mean
// of min(ratio_r, ratio_cap) weighted by each rule's samples. NaN when nothing compares (a pool
// of one, no traffic): an absent signal never makes a worker hot. The load model (model.hpp,
// signal "latency") turns the ratio into the hot state and the capacity like any other signal.
// Comparing within the pool, rule by rule, is what makes one threshold work for every endpoint:
// a room worker's /messages is compared with the other room workers' /messages, not with /send.
//
// Misroute detection. Responses are counted per rule × worker × status class (weighted: a
// sampled response stands for 100 / percent responses; every 5xx is sent, so it counts 1). Every
// misroute_interval, a rule × worker cell whose 5xx count reaches misroute_min_errors, whose 5xx
// share is at least half its responses and at least misroute_factor × the 5xx share of all other
// traffic in the interval is reported: a stream write on the wrong worker is a 500 every time,
// while a remote homeserver being down gives a few 5xx spread over every worker.
//
// Pure and single-threaded (the agent's event loop owns it); memory is one fixed cell per
// rule × worker, allocated at construction.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace spoa::load {

// The config file's `responses:` section (config/sections.cpp, default_config.yaml).
struct feedback_options {
  std::chrono::milliseconds latency_decay{10'000};  // peak-EWMA time constant
  double latency_floor = 0.050;    // seconds: the pool's reference is never taken below this
  double latency_min_samples = 5;  // decayed samples before a cell counts
  std::chrono::milliseconds misroute_interval{10'000};
  double misroute_min_errors = 5;
  double misroute_factor = 10;

  bool operator==(const feedback_options&) const = default;
};

inline constexpr int status_class_count = 5;  // 1xx .. 5xx
// "1xx" .. "5xx"
std::string_view status_class_name(int cls) noexcept;
// 0 for 1xx .. 4 for 5xx; -1 outside 100..599.
int status_class(int status) noexcept;

struct response_sample {
  std::size_t worker = 0;  // index into the config's workers
  std::size_t rule = 0;    // index into the route table's rules
  int status = 0;
  double seconds = std::numeric_limits<double>::quiet_NaN();  // to response headers; NaN: unknown
  bool long_poll = false;
  double weight = 1;  // responses this sample stands for (>= 1)
};

struct misroute {
  std::size_t rule = 0, worker = 0;
  double responses = 0, errors = 0;  // in the interval, weighted
  double share = 0;                  // errors / responses
  double rest_share = 0;             // 5xx share of all other responses in the interval
  double interval_s = 0;
};

class feedback {
 public:
  static constexpr double ratio_cap = 20;

  // `worker_pool[w]`: the pool index of worker w (-1: in no pool). `rules`: the route table's
  // rule count.
  feedback(feedback_options opts, std::vector<int> worker_pool, std::size_t rules);

  // Out-of-range worker or rule, or a status outside 100..599: ignored (returns false).
  bool record(const response_sample& s, std::uint64_t now_ms);

  // See the header comment; NaN when nothing compares.
  double latency_ratio(std::size_t worker, std::uint64_t now_ms) const;
  // The cell's peak-EWMA in seconds; NaN when it is not fresh.
  double cost(std::size_t worker, std::size_t rule, std::uint64_t now_ms) const;

  // Once misroute_interval has passed since the last scan (or construction): the suspects of the
  // interval, and the window starts again. `scanned` tells whether a scan happened.
  std::vector<misroute> scan(std::uint64_t now_ms, bool* scanned = nullptr);

  std::size_t workers() const noexcept { return pool_.size(); }
  std::size_t rules() const noexcept { return rules_; }

 private:
  struct cell {
    double cost = 0;                                  // seconds
    double samples = 0;                               // decayed count
    std::uint64_t stamp_ms = 0;                       // last sample; 0 = none
    std::array<double, status_class_count> window{};  // weighted counts since the last scan
  };
  const cell& at(std::size_t worker, std::size_t rule) const {
    return cells_[rule * pool_.size() + worker];
  }
  cell& at(std::size_t worker, std::size_t rule) { return cells_[rule * pool_.size() + worker]; }
  bool fresh(const cell& c, std::uint64_t now_ms) const;
  double tau_ms() const;  // latency_decay, at least 1 ms

  feedback_options opts_;
  std::vector<int> pool_;
  std::size_t rules_;
  std::vector<cell> cells_;
  std::uint64_t window_start_ms_ = 0;
  bool window_started_ = false;
};

}  // namespace spoa::load
