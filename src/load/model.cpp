#include "load/model.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <utility>

namespace spoa::load {

namespace {

using routing::worker_state;

std::uint64_t ms(std::chrono::milliseconds d) noexcept {
  return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

void ewma(double& x, double sample, double alpha) {
  x = std::isnan(x) ? sample : alpha * sample + (1.0 - alpha) * x;
}

bool finite(double v) {
  return std::isfinite(v);
}

// Δb/Δa-style helper: the increase of a cumulative counter, or NaN when either side is absent or
// the counter went down (a reset: the delta is dropped).
double increase(double before, double after) {
  if (!finite(before) || !finite(after) || after < before) return worker_status::nan;
  return after - before;
}

std::string fixed(double v, int precision) {
  std::array<char, 64> buf{};
  auto r =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, precision);
  if (r.ec != std::errc{}) return "?";
  return std::string(buf.data(), r.ptr);
}

}  // namespace

model::model(options opts, std::size_t workers) : opts_(opts), workers_(workers) {
  for (std::size_t i = 0; i < workers_.size(); ++i)
    workers_[i].name = "worker" + std::to_string(i);
}

model::model(options opts, std::vector<std::string> names) : opts_(opts), workers_(names.size()) {
  for (std::size_t i = 0; i < workers_.size(); ++i)
    workers_[i].name = std::move(names[i]);
}

model::model(const model& previous, options opts, std::vector<std::string> names)
    : model(opts, std::move(names)) {
  hap_scrapes_ = previous.hap_scrapes_;
  for (auto& w : workers_) {
    for (const auto& old : previous.workers_) {
      if (old.name != w.name) continue;
      w = old;
      break;
    }
  }
}

void model::take_deltas(worker& w, const scrape& s, std::uint64_t now_ms) {
  worker_status& st = w.status;
  const double alpha = std::clamp(opts_.ewma_alpha, 1e-6, 1.0);
  bool deltas = false;
  double dt = 0;
  if (w.has_prev) {
    const bool restarted =
        finite(s.start_time) && finite(w.prev.start_time) && s.start_time != w.prev.start_time;
    dt = now_ms > w.prev_ms ? static_cast<double>(now_ms - w.prev_ms) / 1000.0 : 0.0;
    deltas = !restarted && dt > 0;
  }
  for (const signal_def& sig : signals) {
    double& x = st.*sig.value;
    switch (sig.how) {
      case signal_def::derive::level:
        if (finite(s.*sig.a)) ewma(x, s.*sig.a, alpha);
        break;
      case signal_def::derive::ratio:
        if (finite(s.*sig.a) && finite(s.*sig.b) && s.*sig.b > 0)
          ewma(x, s.*sig.a / s.*sig.b, alpha);
        break;
      case signal_def::derive::rate: {
        if (!deltas) break;
        const double d = increase(w.prev.*sig.a, s.*sig.a);
        if (finite(d)) ewma(x, d / dt, alpha);
        break;
      }
      case signal_def::derive::mean: {
        if (!deltas) break;
        const double n = increase(w.prev.*sig.b, s.*sig.b);
        const double sum = increase(w.prev.*sig.a, s.*sig.a);
        if (finite(n) && finite(sum) && n > 0) ewma(x, sum / n, alpha);
        break;
      }
      case signal_def::derive::external:
        break;
    }
  }
  w.prev = s;
  w.prev_ms = now_ms;
  w.has_prev = true;
}

bool model::used(const signal_def& sig) const {
  return sig.hot != nullptr && (!sig.optional || opts_.*sig.hot > 0);
}

double model::cool_of(const signal_def& sig) const {
  const double cool = opts_.*sig.cool;
  return sig.optional && cool <= 0 ? 0.75 * opts_.*sig.hot : cool;
}

worker_state model::evaluate(const worker& w) const {
  const worker_status& st = w.status;
  // No value yet from any signal that is always used (cpu, lag): nothing to judge by.
  bool any = false;
  for (const signal_def& sig : signals)
    if (used(sig) && !sig.optional && !std::isnan(st.*sig.value)) any = true;
  if (!any) return worker_state::unknown;
  // NaN compares false: an absent signal neither heats nor keeps hot.
  bool hot_now = false, cool_now = true;
  for (const signal_def& sig : signals) {
    if (!used(sig)) continue;
    const double v = st.*sig.value;
    if (v >= opts_.*sig.hot) hot_now = true;
    if (v > cool_of(sig)) cool_now = false;
  }
  if (w.health == worker_state::hot) return cool_now ? worker_state::healthy : worker_state::hot;
  return hot_now ? worker_state::hot : worker_state::healthy;
}

double model::utilisation(const worker_status& st) const {
  double u = 0;
  for (const signal_def& sig : signals) {
    if (!used(sig)) continue;
    const double v = st.*sig.value, hot = opts_.*sig.hot;
    if (finite(v) && hot > 0) u = std::max(u, v / hot);
  }
  return u;
}

double model::healthy_capacity(const worker_status& st) const {
  const double u = utilisation(st);
  const double knee = std::clamp(opts_.capacity_knee, 0.0, 0.99);
  if (u <= knee) return 1.0;
  if (u >= 1.0) return opts_.capacity_at_hot;
  return 1.0 - (u - knee) / (1.0 - knee) * (1.0 - opts_.capacity_at_hot);
}

// Sets the fresh (non-stale) capacity and the status from the health state.
void model::refresh(worker& w) {
  switch (w.health) {
    case worker_state::unknown:
      w.fresh_capacity = 1.0;
      break;
    case worker_state::healthy:
      w.fresh_capacity = healthy_capacity(w.status);
      break;
    case worker_state::hot:
    case worker_state::stalled:
      w.fresh_capacity = opts_.hot_capacity;
      break;
    case worker_state::down:
      w.fresh_capacity = 0.0;
      break;
  }
  w.status.state = w.health;
  w.status.capacity = w.fresh_capacity;
}

void model::on_success(std::size_t index, const scrape& s, std::uint64_t now_ms,
                       double scrape_seconds) {
  if (index >= workers_.size()) return;
  worker& w = workers_[index];
  worker_status& st = w.status;
  ++st.scrapes_ok;
  st.last_scrape_ms = now_ms;
  st.last_scrape_seconds = scrape_seconds;
  st.last_success_ms = now_ms;
  w.has_success = true;
  w.unusable = false;

  const bool first_after_down = w.health == worker_state::down && w.successes_since_down == 0;
  if (first_after_down) {
    // The smoothed values and the baseline describe the worker before it failed.
    st.cpu = st.reactor_lag = st.in_flight = st.db_wait = worker_status::nan;
    w.has_prev = false;
  }
  take_deltas(w, s, now_ms);

  const bool blocked =
      opts_.reactor_stall_after.count() > 0 &&
      s.reactor_last_seen >= static_cast<double>(opts_.reactor_stall_after.count()) / 1000.0;
  if (blocked) {
    ++st.consecutive_failures;
    st.last_error = "reactor blocked for " + fixed(s.reactor_last_seen, 1) + " s";
    w.successes_since_down = 0;
    const auto blocked_ms = static_cast<std::uint64_t>(std::min(s.reactor_last_seen, 1e9) * 1000);
    stall(w, now_ms > blocked_ms ? now_ms - blocked_ms : 0, now_ms);
    return;
  }
  st.consecutive_failures = 0;
  st.last_error.clear();
  st.stalled = false;
  if (w.health == worker_state::down) {
    if (w.successes_since_down == 0) {
      w.successes_since_down = 1;
      refresh(w);
      return;
    }
    w.successes_since_down = 0;
    w.health = worker_state::unknown;
  }
  if (w.health == worker_state::stalled) w.health = worker_state::unknown;
  w.health = evaluate(w);
  refresh(w);
}

void model::on_failure(std::size_t index, std::string_view why, std::uint64_t now_ms,
                       double scrape_seconds, failure kind) {
  if (index >= workers_.size()) return;
  worker& w = workers_[index];
  worker_status& st = w.status;
  ++st.scrapes_failed;
  st.last_scrape_ms = now_ms;
  st.last_scrape_seconds = scrape_seconds;
  st.last_error = std::string(why);
  if (kind == failure::unusable) {
    // It answered: whatever it is, it is not stopped.
    w.unusable = true;
    if (st.stalled) {
      st.stalled = false;
      if (w.health == worker_state::stalled) w.health = worker_state::unknown;
    }
    refresh(w);
    return;
  }
  w.unusable = false;
  ++st.consecutive_failures;
  w.successes_since_down = 0;
  if (kind == failure::timeout) {
    // The worker last showed life when its last good scrape completed; without one, when this
    // scrape began.
    const auto took_ms = static_cast<std::uint64_t>(std::clamp(scrape_seconds, 0.0, 1e9) * 1000);
    const std::uint64_t began = now_ms > took_ms ? now_ms - took_ms : 0;
    stall(w, w.has_success ? std::min(st.last_success_ms, began) : began, now_ms);
    return;
  }
  if (st.consecutive_failures >= std::max(1, opts_.down_after_failures) ||
      stall_expired(w, now_ms)) {
    w.health = worker_state::down;
  }
  refresh(w);
}

void model::stall(worker& w, std::uint64_t alive_ms, std::uint64_t now_ms) {
  worker_status& st = w.status;
  if (!st.stalled || alive_ms < st.stalled_since_ms) st.stalled_since_ms = alive_ms;
  st.stalled = true;
  if (st.consecutive_failures >= std::max(1, opts_.down_after_failures) ||
      stall_expired(w, now_ms)) {
    w.health = worker_state::down;
  } else if (w.health != worker_state::down) {
    w.health = worker_state::stalled;
  }
  refresh(w);
}

bool model::stall_expired(const worker& w, std::uint64_t now_ms) const {
  const worker_status& st = w.status;
  return st.stalled && now_ms >= st.stalled_since_ms &&
         now_ms - st.stalled_since_ms >= ms(opts_.stall_down_after);
}

void model::set_latency(std::size_t index, double ratio) {
  if (index >= workers_.size()) return;
  worker& w = workers_[index];
  const double before = w.status.latency;
  w.status.latency = ratio;
  if (before == ratio || (std::isnan(before) && std::isnan(ratio))) return;
  if (w.health == worker_state::healthy || w.health == worker_state::hot) {
    w.health = evaluate(w);
    refresh(w);
  }
}

std::shared_ptr<const routing::load_view> model::publish(std::uint64_t now_ms,
                                                         std::vector<std::string>* changes) {
  if (changes == nullptr) return publish(now_ms, static_cast<std::vector<state_change>*>(nullptr));
  std::vector<state_change> full;
  auto view = publish(now_ms, &full);
  for (auto& c : full)
    changes->push_back(std::move(c.message));
  return view;
}

std::shared_ptr<const routing::load_view> model::publish(std::uint64_t now_ms,
                                                         std::vector<state_change>* changes) {
  auto view = std::make_shared<routing::load_view>();
  view->workers.resize(workers_.size());
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    worker& w = workers_[i];
    if (w.health == worker_state::stalled && stall_expired(w, now_ms)) {
      w.health = worker_state::down;
      refresh(w);
    }
    worker_state state = w.health;
    double capacity = w.fresh_capacity;
    if (w.health != worker_state::down && w.health != worker_state::stalled && w.unusable) {
      state = worker_state::unknown;
      capacity = 1.0;
    }
    if (w.health != worker_state::down && w.health != worker_state::stalled && w.has_success) {
      const std::uint64_t age =
          now_ms > w.status.last_success_ms ? now_ms - w.status.last_success_ms : 0;
      if (w.unusable || age > ms(opts_.stale_after)) {
        const double half_life =
            static_cast<double>(std::max<std::uint64_t>(ms(opts_.stale_after), 1));
        const double over =
            age > ms(opts_.stale_after) ? static_cast<double>(age - ms(opts_.stale_after)) : 0.0;
        state = worker_state::unknown;
        capacity = 1.0 + (w.fresh_capacity - 1.0) * std::exp2(-over / half_life);
      }
    }
    // HAProxy's view, while fresh: its MAINT and failed checks are down, its DRAIN a drain.
    const haproxy_state hs =
        w.hap_ms != 0 && now_ms >= w.hap_ms && now_ms - w.hap_ms <= ms(opts_.stale_after)
            ? w.hap
            : haproxy_state::unknown;
    const bool hap_down = hs == haproxy_state::maint || hs == haproxy_state::down;
    if (hap_down) state = worker_state::down;
    w.status.state = state;
    w.status.capacity = capacity;
    view->workers[i] = routing::worker_load{state, capacity, hs == haproxy_state::drain};
    if (hs != w.hap_published) {
      if (changes != nullptr) {
        state_change c;
        c.worker = i;
        c.name = w.name;
        c.from = c.to = w.published;
        c.reason = "haproxy";
        c.haproxy_change = true;
        c.haproxy_from = w.hap_published;
        c.haproxy_to = hs;
        c.status = w.status;
        c.message = w.name + ": HAProxy " + std::string(to_string(w.hap_published)) + " -> " +
                    std::string(to_string(hs));
        changes->push_back(std::move(c));
      }
      w.hap_published = hs;
    }
    if (state != w.published) {
      if (changes != nullptr) {
        if (hap_down && w.health != worker_state::down) {
          state_change c;
          c.name = w.name;
          c.from = w.published;
          c.to = state;
          c.reason = "haproxy";
          c.haproxy_to = hs;
          c.status = w.status;
          c.message = w.name + ": " + std::string(routing::to_string(w.published)) +
                      " -> down (HAProxy reports it " + std::string(to_string(hs)) + ")";
          changes->push_back(std::move(c));
        } else {
          changes->push_back(describe(w, w.published, now_ms));
        }
        changes->back().worker = i;
      }
      w.published = state;
    }
  }
  return view;
}

state_change model::describe(const worker& w, worker_state from, std::uint64_t now_ms) const {
  const worker_status& st = w.status;
  state_change c;
  c.name = w.name;
  c.from = from;
  c.to = st.state;
  c.status = st;
  const auto since = [&](std::uint64_t t) {
    return static_cast<double>(now_ms - std::min(now_ms, t)) / 1000.0;
  };
  std::string& out = c.message;
  out = w.name + ": " + std::string(routing::to_string(from)) + " -> " +
        std::string(routing::to_string(st.state)) + " (";
  if (st.state == worker_state::down && st.stalled) {
    c.reason = "no_life";
    c.silent_seconds = since(st.stalled_since_ms);
    out += "no sign of life for " + fixed(c.silent_seconds, 1) + " s: " + st.last_error;
  } else if (st.state == worker_state::down) {
    c.reason = "failures";
    out += std::to_string(st.consecutive_failures) + " consecutive failures: " + st.last_error;
  } else if (st.state == worker_state::stalled) {
    c.reason = "stall";
    c.silent_seconds = since(st.stalled_since_ms);
    out += st.last_error + ", no sign of life for " + fixed(c.silent_seconds, 1) + " s";
  } else if (st.state == worker_state::unknown && w.has_success && now_ms > st.last_success_ms) {
    c.reason = w.unusable ? "unusable" : "stale";
    c.silent_seconds = since(st.last_success_ms);
    out += "no successful scrape for " + fixed(c.silent_seconds, 1) + " s";
  } else {
    if (st.state == worker_state::hot) {
      c.reason = "hot";
    } else if (st.state == worker_state::healthy && from == worker_state::hot) {
      c.reason = "cool";
    } else {
      c.reason = "scrapes";
    }
    bool first = true;
    for (const signal_def& sig : signals) {
      if (!sig.always_shown && !used(sig)) continue;
      const double v = st.*sig.value;
      // Latency is shown once HAProxy's responses give it a value.
      if (sig.how == signal_def::derive::external && !finite(v)) continue;
      out += first ? "" : ", ";
      first = false;
      out += std::string(sig.name) + " " +
             (finite(v) ? fixed(v, sig.decimals) + std::string(sig.unit) : std::string("n/a"));
    }
    if (!st.last_error.empty()) out += ", " + st.last_error;
  }
  out += ")";
  return c;
}

void model::set_haproxy_servers(std::vector<haproxy_server_ref> refs) {
  hap_refs_ = std::move(refs);
  hap_refs_.resize(workers_.size());
}

void model::on_haproxy(std::string_view body, std::uint64_t now_ms) {
  haproxy_parse r = parse_haproxy_servers(body, hap_refs_);
  if (!r.ok) return on_haproxy_failure("bad HAProxy metrics body: " + r.error, now_ms);
  ++hap_scrapes_.ok;
  hap_scrapes_.last_error.clear();
  for (std::size_t i = 0; i < workers_.size() && i < r.states.size(); ++i) {
    workers_[i].hap = r.states[i];
    workers_[i].hap_ms = now_ms;
  }
}

void model::on_haproxy_failure(std::string_view why, std::uint64_t) {
  ++hap_scrapes_.failed;
  hap_scrapes_.last_error = std::string(why);
}

haproxy_state model::haproxy(std::size_t index) const {
  return index < workers_.size() ? workers_[index].hap_published : haproxy_state::unknown;
}

const worker_status& model::status(std::size_t index) const {
  static const worker_status none{};
  return index < workers_.size() ? workers_[index].status : none;
}

}  // namespace spoa::load
