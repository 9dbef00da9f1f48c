#include "load/feedback.hpp"

#include <algorithm>
#include <cmath>

namespace spoa::load {

std::string_view status_class_name(int cls) noexcept {
  static constexpr std::string_view names[status_class_count] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  return cls >= 0 && cls < status_class_count ? names[cls] : std::string_view("other");
}

int status_class(int status) noexcept {
  return status >= 100 && status <= 599 ? status / 100 - 1 : -1;
}

feedback::feedback(feedback_options opts, std::vector<int> worker_pool, std::size_t rules)
    : opts_(opts), pool_(std::move(worker_pool)), rules_(rules), cells_(rules_ * pool_.size()) {}

bool feedback::record(const response_sample& s, std::uint64_t now_ms) {
  const int cls = status_class(s.status);
  if (s.worker >= pool_.size() || s.rule >= rules_ || cls < 0) return false;
  if (!window_started_) {
    window_started_ = true;
    window_start_ms_ = now_ms;
  }
  cell& c = at(s.worker, s.rule);
  c.window[static_cast<std::size_t>(cls)] += std::clamp(s.weight, 1.0, 1e6);
  if (s.long_poll || !std::isfinite(s.seconds) || s.seconds < 0) return true;
  const double x = std::min(s.seconds, 3600.0);
  if (c.stamp_ms == 0) {
    c.cost = x;
    c.samples = 1;
  } else {
    const double dt = now_ms > c.stamp_ms ? static_cast<double>(now_ms - c.stamp_ms) : 0.0;
    const double w = std::exp(-dt / tau_ms());
    c.cost = x > c.cost ? x : c.cost * w + x * (1 - w);
    c.samples = c.samples * w + 1;
  }
  c.stamp_ms = std::max<std::uint64_t>(now_ms, 1);
  return true;
}

bool feedback::fresh(const cell& c, std::uint64_t now_ms) const {
  if (c.stamp_ms == 0) return false;
  const double dt = now_ms > c.stamp_ms ? static_cast<double>(now_ms - c.stamp_ms) : 0.0;
  if (dt > 3 * tau_ms()) return false;
  // The decayed count as of now: a burst long ago does not count as many samples.
  return c.samples * std::exp(-dt / tau_ms()) >= opts_.latency_min_samples - 1e-9;
}

double feedback::cost(std::size_t worker, std::size_t rule, std::uint64_t now_ms) const {
  if (worker >= pool_.size() || rule >= rules_) return std::numeric_limits<double>::quiet_NaN();
  const cell& c = at(worker, rule);
  return fresh(c, now_ms) ? c.cost : std::numeric_limits<double>::quiet_NaN();
}

double feedback::latency_ratio(std::size_t worker, std::uint64_t now_ms) const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (worker >= pool_.size() || pool_[worker] < 0) return nan;
  const int pool = pool_[worker];
  double sum = 0, weight = 0;
  std::vector<double> others;
  for (std::size_t r = 0; r < rules_; ++r) {
    const cell& mine = at(worker, r);
    if (!fresh(mine, now_ms)) continue;
    others.clear();
    for (std::size_t v = 0; v < pool_.size(); ++v) {
      if (v == worker || pool_[v] != pool) continue;
      const cell& c = at(v, r);
      if (fresh(c, now_ms)) others.push_back(c.cost);
    }
    if (others.empty()) continue;
    const auto mid = others.begin() + static_cast<std::ptrdiff_t>(others.size() / 2);
    std::nth_element(others.begin(), mid, others.end());
    double ref = *mid;
    if (others.size() % 2 == 0) ref = (ref + *std::max_element(others.begin(), mid)) / 2;
    const double ratio = mine.cost / std::max(ref, std::max(opts_.latency_floor, 1e-6));
    sum += std::min(ratio, ratio_cap) * mine.samples;
    weight += mine.samples;
  }
  return weight > 0 ? sum / weight : nan;
}

std::vector<misroute> feedback::scan(std::uint64_t now_ms, bool* scanned) {
  std::vector<misroute> out;
  if (scanned != nullptr) *scanned = false;
  if (!window_started_) {
    window_started_ = true;
    window_start_ms_ = now_ms;
    return out;
  }
  if (now_ms < window_start_ms_ ||
      now_ms - window_start_ms_ < static_cast<std::uint64_t>(opts_.misroute_interval.count())) {
    return out;
  }
  if (scanned != nullptr) *scanned = true;
  const double interval_s = static_cast<double>(now_ms - window_start_ms_) / 1000.0;
  double all = 0, all_errors = 0;
  for (const cell& c : cells_) {
    for (double n : c.window)
      all += n;
    all_errors += c.window[4];
  }
  for (std::size_t r = 0; r < rules_ && all_errors > 0; ++r) {
    for (std::size_t w = 0; w < pool_.size(); ++w) {
      const cell& c = at(w, r);
      const double errors = c.window[4];
      if (errors < opts_.misroute_min_errors) continue;
      double n = 0;
      for (double x : c.window)
        n += x;
      const double share = errors / n;
      const double rest_n = all - n, rest_errors = all_errors - errors;
      const double rest_share = rest_n > 0 ? rest_errors / rest_n : 0.0;
      if (share < 0.5 || share < opts_.misroute_factor * rest_share) continue;
      out.push_back({r, w, n, errors, share, rest_share, interval_s});
    }
  }
  for (cell& c : cells_)
    c.window = {};
  window_start_ms_ = now_ms;
  return out;
}

double feedback::tau_ms() const {
  return static_cast<double>(std::max<std::int64_t>(opts_.latency_decay.count(), 1));
}

}  // namespace spoa::load
