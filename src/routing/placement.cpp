#include "routing/placement.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "routing/rendezvous.hpp"
#include "routing/snapshot.hpp"

namespace spoa::routing {
namespace {

constexpr std::size_t max_workers = affinity_table::no_worker;  // indices 0..65534
constexpr double renormalize_after_half_lives = 64;
// Entries dropped from the LRU tail per place() call: enough to outpace any insert rate, small
// enough to bound the call's cost.
constexpr std::size_t expire_per_call = 4;

std::uint64_t system_unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out.append(buf);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  out.append(buf);
}

// Sanitises a capacity read from metrics: not a number -> neutral, negative -> 0, huge -> 1e6.
double clean_capacity(double c) noexcept {
  if (std::isnan(c)) return 1.0;
  return std::clamp(c, 0.0, 1e6);
}

}  // namespace

std::string_view to_string(reason r) noexcept {
  switch (r) {
    case reason::affinity_hit:
      return "affinity_hit";
    case reason::new_key:
      return "new_key";
    case reason::spill:
      return "spill";
    case reason::moved:
      return "moved";
    case reason::least_loaded:
      return "least_loaded";
    case reason::fallback:
      return "fallback";
  }
  return "fallback";
}

placement::placement(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                     placement_options opts)
    : table_(opts.max_keys, opts.affinity_ttl_ms) {
  build(std::move(pools), std::move(workers), std::move(opts));
  tokens_ = std::max(1.0, opts_.max_moves_per_second);
}

void placement::build(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                      placement_options opts) {
  if (workers.size() > max_workers)
    throw std::invalid_argument("placement: more than 65534 workers");
  std::unordered_map<std::string_view, std::size_t> names;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const auto& w = workers[i];
    if (w.pool < -1 || w.pool >= static_cast<int>(pools.size()))
      throw std::invalid_argument("placement: worker " + w.name + " has pool index " +
                                  std::to_string(w.pool) + " out of range");
    if (!std::isfinite(w.weight) || w.weight <= 0)
      throw std::invalid_argument("placement: worker " + w.name + " has weight " +
                                  std::to_string(w.weight) + " (must be > 0)");
    if (!names.emplace(w.name, i).second)
      throw std::invalid_argument("placement: duplicate worker name " + w.name);
  }
  if (!(opts.balance_factor >= 1.0)) opts.balance_factor = 1.0;
  if (!(opts.overload_factor >= 1.0)) opts.overload_factor = 1.0;
  if (!(opts.max_moves_per_second >= 0.0)) opts.max_moves_per_second = 0.0;
  if (!(opts.return_per_second >= 0.0)) opts.return_per_second = 0.0;
  if (opts.load_half_life_ms == 0) opts.load_half_life_ms = 1;

  sip_ = derive_sip_key(opts.hash_key);
  pool_specs_ = std::move(pools);
  specs_ = std::move(workers);
  opts_ = std::move(opts);

  workers_.assign(specs_.size(), worker_rt{});
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    workers_[i].seed = worker_seed(sip_, specs_[i].name);
    workers_[i].weight = specs_[i].weight;
  }
  pools_.assign(pool_specs_.size(), pool_rt{});
  std::size_t largest = 0;
  for (std::size_t p = 0; p < pool_specs_.size(); ++p) {
    pool_rt& pr = pools_[p];
    pr.salt = mix64(siphash24(sip_, "pool:" + pool_specs_[p].name));
    for (std::size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].pool == static_cast<int>(p))
        pr.members.push_back(static_cast<std::uint16_t>(i));
    std::sort(pr.members.begin(), pr.members.end(),
              [&](std::uint16_t a, std::uint16_t b) { return specs_[a].name < specs_[b].name; });
    largest = std::max(largest, pr.members.size());
  }
  for (auto& pr : pools_)
    pr.return_tokens = std::max(1.0, opts_.return_per_second);
  scratch_.clear();
  scratch_.reserve(largest);
  table_.set_limits(opts_.max_keys, opts_.affinity_ttl_ms);
}

void placement::set_load(std::shared_ptr<const load_view> view) {
  set_load(std::move(view), clock_ms_);
}

void placement::set_load(std::shared_ptr<const load_view> view, std::uint64_t now_ms) {
  view_ = std::move(view);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    worker_load l;
    if (view_ && i < view_->workers.size()) l = view_->workers[i];
    worker_rt& w = workers_[i];
    w.state = l.state;
    w.capacity = clean_capacity(l.capacity);
    w.returning = false;
    if (l.state == worker_state::down || l.state == worker_state::stalled) {
      w.up_since = never;
    } else if (w.up_since == never) {
      w.up_since = now_ms;
      w.returning = true;
    }
  }
  // A worker back from down (or a stall) has a decayed, near-zero request rate: to the bound it
  // would look empty and take every new key of its pool until its rate caught up ("ends the
  // stall with 0 rooms and then drowns in new ones"). It starts at the pool's average instead,
  // so new keys follow their ranking; its displaced keys come back at return_per_second.
  for (const auto& p : pools_) {
    double count = 0, cap = 0;
    for (std::uint16_t m : p.members) {
      if (workers_[m].returning || !usable(m)) continue;
      count += workers_[m].count;
      cap += capacity_of(m);
    }
    if (cap <= 0) continue;
    for (std::uint16_t m : p.members)
      if (workers_[m].returning)
        workers_[m].count = std::max(workers_[m].count, count / cap * capacity_of(m));
  }
  for (auto& p : pools_)
    p.evaluated_at = never;
}

void placement::set_drain(const std::string& worker, bool drain) {
  for (auto& s : specs_)
    if (s.name == worker) s.drain = drain;
  for (auto& p : pools_)
    p.evaluated_at = never;
}

// ---- load -----------------------------------------------------------------------------------

double placement::increment_at(std::uint64_t now_ms) const noexcept {
  now_ms = std::max(now_ms, clock_ms_);
  return std::exp2(static_cast<double>(now_ms - epoch_ms_) /
                   static_cast<double>(opts_.load_half_life_ms));
}

std::uint64_t placement::advance(std::uint64_t now_ms) noexcept {
  if (now_ms <= clock_ms_) return clock_ms_;
  clock_ms_ = now_ms;
  const double e =
      static_cast<double>(now_ms - epoch_ms_) / static_cast<double>(opts_.load_half_life_ms);
  if (e > renormalize_after_half_lives) {
    const double f = std::exp2(-e);
    for (auto& w : workers_)
      w.count *= f;
    epoch_ms_ = now_ms;
    inc_ = 1.0;
  } else {
    inc_ = std::exp2(e);
  }
  return now_ms;
}

bool placement::usable(std::size_t w) const noexcept {
  return workers_[w].state != worker_state::down && !specs_[w].drain && capacity_of(w) > 0;
}

bool placement::takes_new(std::size_t w, const pool_sums& s) const noexcept {
  const worker_state st = workers_[w].state;
  return usable(w) && st != worker_state::stalled && (st != worker_state::hot || !s.has_cool);
}

placement::pool_sums placement::sums(const pool_rt& p) const noexcept {
  pool_sums s;
  for (std::uint16_t m : p.members) {
    if (!usable(m)) continue;
    s.count += workers_[m].count;
    s.capacity += capacity_of(m);
    const worker_state st = workers_[m].state;
    if (st != worker_state::hot && st != worker_state::stalled) s.has_cool = true;
  }
  return s;
}

// Tracks, per worker, since when it has been above overload_factor x the pool average. Runs at
// most once per pool per millisecond, so the hit path stays O(1) amortised.
void placement::evaluate_overload(pool_rt& p, std::uint64_t now_ms) noexcept {
  if (p.evaluated_at == now_ms) return;
  p.evaluated_at = now_ms;
  const pool_sums s = sums(p);
  const double limit = s.capacity > 0 ? opts_.overload_factor * s.count / s.capacity : 0;
  for (std::uint16_t m : p.members) {
    worker_rt& w = workers_[m];
    const double cap = capacity_of(m);
    bool over;
    // Rate imbalance alone is not overload: one busy room makes its worker busier than the
    // average wherever it lives, and moving it would only move the imbalance (and then move it
    // back). Overload needs live evidence from the load source as well: hot, or capacity < 1.
    const bool strained = w.state == worker_state::hot || w.capacity < 1.0;
    // A stalled worker keeps its keys until it is down (or answers again).
    if (w.state == worker_state::down || w.state == worker_state::stalled || specs_[m].drain ||
        !strained)
      over = false;
    else if (cap <= 0)
      over = true;  // "take nothing": remembered keys leave gradually
    else
      over = s.capacity > 0 && w.count / cap > limit;
    if (!over)
      w.over_since = never;
    else if (w.over_since == never)
      w.over_since = now_ms;
  }
}

bool placement::overloaded(std::size_t w, std::uint64_t now_ms) const noexcept {
  const std::uint64_t since = workers_[w].over_since;
  return since != never && now_ms >= since && now_ms - since >= opts_.overload_after_ms;
}

placement::move_kind placement::must_move(int pool, std::uint16_t worker,
                                          std::uint64_t now_ms) const noexcept {
  if (worker >= workers_.size() || specs_[worker].pool != pool) return move_kind::removed;
  if (workers_[worker].state == worker_state::down) return move_kind::down;
  if (specs_[worker].drain) return move_kind::drain;
  if (overloaded(worker, now_ms)) return move_kind::overload;
  return move_kind::none;
}

// The tokens of a bucket refilled at `rate` per second since at_ms, with a burst of one second's
// worth (at least 1). Shared by the move bucket and the per-pool sticky-home buckets.
static double refilled(double tokens, std::uint64_t at_ms, std::uint64_t now_ms,
                       double rate) noexcept {
  const double burst = std::max(1.0, rate);
  const double elapsed = now_ms > at_ms ? static_cast<double>(now_ms - at_ms) : 0;
  return std::min(burst, tokens + elapsed * rate / 1000.0);
}

// Token bucket for gradual moves: max_moves_per_second.
bool placement::token_available(std::uint64_t now_ms) const noexcept {
  if (opts_.max_moves_per_second <= 0) return false;
  return refilled(tokens_, tokens_at_ms_, now_ms, opts_.max_moves_per_second) >= 1.0;
}

void placement::take_token(std::uint64_t now_ms) noexcept {
  tokens_ = refilled(tokens_, tokens_at_ms_, now_ms, opts_.max_moves_per_second) - 1.0;
  tokens_at_ms_ = std::max(now_ms, tokens_at_ms_);
}

// ---- selection ------------------------------------------------------------------------------

void placement::rank_members(const pool_rt& p, std::uint64_t key_hash) const noexcept {
  // scratch_ is reserved for the largest pool: no allocation. Insertion sort: pools hold tens of
  // workers at most.
  scratch_.clear();
  for (std::uint16_t m : p.members) {
    const double s = rendezvous_score(key_hash, workers_[m].seed, workers_[m].weight);
    std::size_t i = scratch_.size();
    scratch_.emplace_back(s, m);
    while (i > 0 && ranks_before(s, specs_[m].name, scratch_[i - 1].first,
                                 specs_[scratch_[i - 1].second].name)) {
      std::swap(scratch_[i], scratch_[i - 1]);
      --i;
    }
  }
}

placement::choice placement::select(const pool_rt& p, std::uint64_t key_hash, double inc,
                                    int exclude, std::vector<const char*>* skipped) const {
  choice c;
  const std::size_t n = p.members.size();
  if (n == 0) return c;
  rank_members(p, key_hash);
  c.first = scratch_[0].second;
  const pool_sums s = sums(p);
  const double bound = s.capacity > 0 ? opts_.balance_factor * (s.count + inc) / s.capacity : 0;
  if (skipped) skipped->assign(n, nullptr);
  for (std::size_t r = 0; r < n; ++r) {
    const std::uint16_t m = scratch_[r].second;
    const char* why = nullptr;
    if (static_cast<int>(m) == exclude)
      why = "current";
    else if (workers_[m].state == worker_state::down)
      why = "down";
    else if (specs_[m].drain)
      why = "drain";
    else if (capacity_of(m) <= 0)
      why = "no capacity";
    else if (workers_[m].state == worker_state::stalled)
      why = "stalled";
    else if (!takes_new(m, s))
      why = "hot";
    else if (!(workers_[m].count / capacity_of(m) < bound))
      why = "over bound";
    if (skipped) (*skipped)[r] = why;
    if (why == nullptr) {
      c.worker = m;
      c.rank = static_cast<int>(r);
      return c;
    }
    if (why[0] == 'o') c.spilled = true;
  }
  // Nobody under the bound (only possible through rounding): the least loaded eligible worker.
  double best = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const std::uint16_t m = scratch_[r].second;
    if (static_cast<int>(m) == exclude || !takes_new(m, s)) continue;
    const double l = workers_[m].count / capacity_of(m);
    if (c.worker < 0 || l < best) {
      c.worker = m;
      c.rank = static_cast<int>(r);
      best = l;
    }
  }
  return c;
}

int placement::second_choice(int exclude, const pool_sums& s, int* rank) const noexcept {
  const std::size_t n = scratch_.size();
  int next = -1, next_rank = -1;
  bool after = false;
  for (std::size_t r = 0; r < n; ++r) {
    const int m = scratch_[r].second;
    if (m == exclude) {
      after = true;
      continue;
    }
    if (takes_new(static_cast<std::size_t>(m), s)) {
      if (rank) *rank = static_cast<int>(r);
      return m;
    }
    if (after && next < 0) {
      next = m;
      next_rank = static_cast<int>(r);
    }
  }
  if (next < 0) {  // `exclude` was last (or absent): wrap to the top of the ranking
    for (std::size_t r = 0; r < n && next < 0; ++r) {
      if (scratch_[r].second != exclude) {
        next = scratch_[r].second;
        next_rank = static_cast<int>(r);
      }
    }
  }
  if (rank) *rank = next_rank;
  return next;
}

int placement::rank_in_scratch(int worker) const noexcept {
  for (std::size_t r = 0; r < scratch_.size(); ++r)
    if (scratch_[r].second == worker) return static_cast<int>(r);
  return -1;
}

int placement::return_target(std::uint16_t entry_rank, int current, const pool_sums& s, double inc,
                             std::uint64_t now_ms) const noexcept {
  if (opts_.return_per_second <= 0 || !affinity_table::is_displaced(entry_rank)) return -1;
  const std::size_t h = affinity_table::home_rank(entry_rank);
  if (h >= scratch_.size()) return -1;
  const std::uint16_t home = scratch_[h].second;
  if (home == current || !takes_new(home, s)) return -1;
  const std::uint64_t up = workers_[home].up_since;
  if (up == never || now_ms < up || now_ms - up < opts_.return_after_ms) return -1;
  const double bound = s.capacity > 0 ? opts_.balance_factor * (s.count + inc) / s.capacity : 0;
  if (!(workers_[home].count / capacity_of(home) < bound)) return -1;
  return home;
}

// Sticky-home bucket, one per pool: return_per_second.
bool placement::return_token_available(const pool_rt& p, std::uint64_t now_ms) const noexcept {
  return refilled(p.return_tokens, p.return_tokens_at_ms, now_ms, opts_.return_per_second) >= 1.0;
}

void placement::take_return_token(pool_rt& p, std::uint64_t now_ms) noexcept {
  p.return_tokens =
      refilled(p.return_tokens, p.return_tokens_at_ms, now_ms, opts_.return_per_second) - 1.0;
  p.return_tokens_at_ms = std::max(now_ms, p.return_tokens_at_ms);
}

int placement::second_least_loaded(const pool_rt& p, int exclude) const noexcept {
  const pool_sums s = sums(p);
  int best = -1;
  double best_load = 0;
  for (std::uint16_t m : p.members) {
    if (static_cast<int>(m) == exclude || !takes_new(m, s)) continue;
    const double l = workers_[m].count / capacity_of(m);
    if (best < 0 || l < best_load) {
      best = m;
      best_load = l;
    }
  }
  if (best < 0) {  // nobody eligible: any other member, by name
    for (std::uint16_t m : p.members)
      if (static_cast<int>(m) != exclude) return m;
  }
  return best;
}

int placement::least_loaded(const pool_rt& p) const noexcept {
  const pool_sums s = sums(p);
  int best = -1;
  double best_load = 0;
  for (std::uint16_t m : p.members) {  // by name: ties go to the smaller name
    if (!takes_new(m, s)) continue;
    const double l = workers_[m].count / capacity_of(m);
    if (best < 0 || l < best_load) {
      best = m;
      best_load = l;
    }
  }
  return best;
}

// ---- the hot path ---------------------------------------------------------------------------

decision placement::place(int pool, std::string_view key, std::uint64_t now_ms) noexcept {
  decision d;
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size()) {
    ++stats_.decisions[static_cast<int>(reason::fallback)];
    return d;
  }
  pool_rt& p = pools_[static_cast<std::size_t>(pool)];
  if (p.members.empty()) {
    ++stats_.decisions[static_cast<int>(reason::fallback)];
    return d;
  }
  now_ms = advance(now_ms);
  table_.expire(now_ms, expire_per_call);
  auto finish = [&](int worker, reason why, int rank) {
    d.worker = worker;
    d.why = why;
    d.rank = rank;
    workers_[static_cast<std::size_t>(worker)].count += inc_;
    ++stats_.decisions[static_cast<int>(why)];
    return d;
  };

  if (!pool_specs_[static_cast<std::size_t>(pool)].keyed || key.empty()) {
    const int w = least_loaded(p);
    const int chosen = w < 0 ? p.members.front() : w;
    d.second = second_least_loaded(p, chosen);
    return finish(chosen, w < 0 ? reason::fallback : reason::least_loaded, 0);
  }

  d.key_hash = key_hash(key);
  const std::uint64_t th = table_hash(p, d.key_hash);
  evaluate_overload(p, now_ms);
  try {  // only the table's growth can throw (bad_alloc); the decision then goes unremembered
    if (affinity_table::entry* e = table_.find(th, now_ms)) {
      const std::uint16_t current = e->worker;
      const move_kind mk = must_move(pool, current, now_ms);
      const bool displaced = affinity_table::is_displaced(e->rank);
      // The key stays on `current`: its rank as placed, or where it now stands if displaced.
      auto stay = [&](const pool_sums& s) {
        d.second = second_choice(current, s);
        const int rank = e->rank == affinity_table::no_rank ? -1
                         : displaced                        ? rank_in_scratch(current)
                                                            : e->rank;
        return finish(current, reason::affinity_hit, rank);
      };
      if (mk == move_kind::none || mk == move_kind::drain || mk == move_kind::overload) {
        rank_members(p, d.key_hash);
        const pool_sums s = sums(p);
        if (mk == move_kind::none) {
          const int home = displaced ? return_target(e->rank, current, s, inc_, now_ms) : -1;
          if (home < 0 || !return_token_available(p, now_ms)) return stay(s);
          take_return_token(p, now_ms);
          ++stats_.moves_returned;
          table_.set_worker(*e, static_cast<std::uint16_t>(home));
          e->rank = affinity_table::home_rank(e->rank);
          d.second = second_choice(home, s);
          return finish(home, reason::moved, e->rank);
        }
        if (!token_available(now_ms)) return stay(s);
        const choice c = select(p, d.key_hash, inc_, current, nullptr);
        if (c.worker < 0) return stay(s);
        take_token(now_ms);
        ++(mk == move_kind::drain ? stats_.moves_drain : stats_.moves_overload);
        table_.set_worker(*e, static_cast<std::uint16_t>(c.worker));
        // A displaced key keeps its home unless this move took it there.
        if (!displaced || static_cast<int>(affinity_table::home_rank(e->rank)) == c.rank)
          e->rank = static_cast<std::uint16_t>(c.rank);
        d.second = second_choice(c.worker, s);
        return finish(c.worker, reason::moved, c.rank);
      }
      if (mk == move_kind::down) {
        // To the second choice: the worker HAProxy was told as server2.
        rank_members(p, d.key_hash);
        const pool_sums s = sums(p);
        int target_rank = -1;
        const int target = second_choice(current, s, &target_rank);
        if (target < 0 || !takes_new(static_cast<std::size_t>(target), s)) {
          // Nowhere to go: first-ranked worker, remembered placement kept so the key returns
          // when its worker does.
          const int first = scratch_[0].second;
          d.second = second_choice(first, s);
          return finish(first, reason::fallback, 0);
        }
        ++stats_.moves_down;
        const int current_rank = rank_in_scratch(current);
        int home_rank = displaced ? affinity_table::home_rank(e->rank) : current_rank;
        if (home_rank >= static_cast<int>(affinity_table::displaced)) home_rank = -1;
        table_.set_worker(*e, static_cast<std::uint16_t>(target));
        if (home_rank < 0 || home_rank == target_rank)
          e->rank = static_cast<std::uint16_t>(target_rank);
        else
          e->rank = static_cast<std::uint16_t>(affinity_table::displaced | home_rank);
        d.second = second_choice(target, s);
        return finish(target, reason::moved, target_rank);
      }
      // Removed by a reconfiguration: placed afresh, as a new key.
      const choice c = select(p, d.key_hash, inc_, -1, nullptr);
      const pool_sums s = sums(p);
      if (c.worker < 0) {
        table_.erase(th);
        d.second = second_choice(c.first, s);
        return finish(c.first, reason::fallback, 0);
      }
      ++stats_.moves_removed;
      table_.set_worker(*e, static_cast<std::uint16_t>(c.worker));
      e->rank = static_cast<std::uint16_t>(c.rank);
      d.second = second_choice(c.worker, s);
      return finish(c.worker, reason::moved, c.rank);
    }
    const choice c = select(p, d.key_hash, inc_, -1, nullptr);
    const pool_sums s = sums(p);
    if (c.worker < 0) {
      d.second = second_choice(c.first, s);
      return finish(c.first, reason::fallback, 0);
    }
    d.second = second_choice(c.worker, s);
    table_.insert(th, static_cast<std::uint16_t>(c.worker), static_cast<std::uint16_t>(c.rank),
                  now_ms);
    return finish(c.worker, c.spilled ? reason::spill : reason::new_key, c.rank);
  } catch (...) {
    const choice c = select(p, d.key_hash, inc_, -1, nullptr);  // no allocation: scratch_ reserved
    const pool_sums s = sums(p);
    const int chosen = c.worker < 0 ? c.first : c.worker;
    d.second = second_choice(chosen, s);
    if (c.worker < 0) return finish(c.first, reason::fallback, 0);
    return finish(c.worker, c.spilled ? reason::spill : reason::new_key, c.rank);
  }
}

std::size_t placement::expire(std::uint64_t now_ms, std::size_t limit) noexcept {
  return table_.expire(advance(now_ms), limit);
}

// ---- explain --------------------------------------------------------------------------------

std::string placement::explain(int pool, std::string_view key, std::uint64_t now_ms) const {
  std::string out = "{";
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size()) {
    out.append(
        "\"pool\":null,\"ranking\":[],\"bound\":null,\"remembered\":null,\"home\":null,"
        "\"chosen\":null,\"second\":null,\"reason\":\"fallback\"}");
    return out;
  }
  const pool_rt& p = pools_[static_cast<std::size_t>(pool)];
  const bool keyed = pool_specs_[static_cast<std::size_t>(pool)].keyed && !key.empty();
  now_ms = std::max(now_ms, clock_ms_);
  const double inc = increment_at(now_ms);
  // count x per_second = decayed requests per second (an exponentially weighted rate).
  const double per_second =
      std::log(2.0) * 1000.0 / (static_cast<double>(opts_.load_half_life_ms) * inc);
  const std::uint64_t kh = keyed ? key_hash(key) : 0;
  const pool_sums s = sums(p);

  const affinity_table::entry* e = keyed ? table_.peek(table_hash(p, kh), now_ms) : nullptr;
  std::vector<const char*> skipped;
  int chosen = -1;
  int second = -1;
  int home = -1;
  reason why = reason::fallback;
  choice c;
  if (!keyed) {
    chosen = least_loaded(p);
    why = chosen >= 0 ? reason::least_loaded : reason::fallback;
    if (chosen < 0 && !p.members.empty()) chosen = p.members.front();
    if (chosen >= 0) second = second_least_loaded(p, chosen);
  } else {
    // Overload as place() would see it after this millisecond's evaluation is approximated by
    // the last evaluation: explain never mutates.
    const move_kind mk = e ? must_move(pool, e->worker, now_ms) : move_kind::none;
    const int current = e ? e->worker : -1;
    const bool gradual = mk == move_kind::drain || mk == move_kind::overload;
    const int exclude = e && mk != move_kind::removed && mk != move_kind::none ? current : -1;
    c = select(p, kh, inc, exclude, &skipped);  // leaves the ranking in scratch_
    if (e && affinity_table::is_displaced(e->rank)) {
      const std::size_t h = affinity_table::home_rank(e->rank);
      if (h < scratch_.size()) home = scratch_[h].second;
    }
    if (e && mk == move_kind::none) {
      const int back = return_target(e->rank, current, s, inc, now_ms);
      if (back >= 0 && return_token_available(p, now_ms)) {
        chosen = back;
        why = reason::moved;
      } else {
        chosen = current;
        why = reason::affinity_hit;
      }
    } else if (e && mk == move_kind::down) {
      const int target = second_choice(current, s);
      if (target >= 0 && takes_new(static_cast<std::size_t>(target), s)) {
        chosen = target;
        why = reason::moved;
      } else {
        chosen = c.first;
        why = reason::fallback;
      }
    } else if (e && gradual) {
      if (!token_available(now_ms) || c.worker < 0) {
        chosen = current;
        why = reason::affinity_hit;
      } else {
        chosen = c.worker;
        why = reason::moved;
      }
    } else if (c.worker >= 0) {
      chosen = c.worker;
      why = e ? reason::moved : c.spilled ? reason::spill : reason::new_key;
    } else {
      chosen = c.first;
      why = reason::fallback;
    }
    if (chosen >= 0) second = second_choice(chosen, s);
  }

  out.append("\"pool\":");
  json_string(out, pool_specs_[static_cast<std::size_t>(pool)].name);
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, kh);
  out.append(",\"key_hash\":");
  json_string(out, hex);
  out.append(",\"ranking\":[");
  // Keyed: rendezvous order (select() left it in scratch_). Unkeyed: members by name.
  for (std::size_t r = 0; r < p.members.size(); ++r) {
    const std::uint16_t m = keyed ? scratch_[r].second : p.members[r];
    if (r) out.push_back(',');
    out.append("{\"worker\":");
    json_string(out, specs_[m].name);
    out.append(",\"server\":");
    json_string(out, specs_[m].server);
    out.append(",\"score\":");
    if (keyed)
      json_number(out, scratch_[r].first);
    else
      out.append("null");
    out.append(",\"weight\":");
    json_number(out, workers_[m].weight);
    out.append(",\"capacity\":");
    json_number(out, workers_[m].capacity);
    out.append(",\"load\":");
    const double cap = capacity_of(m);
    json_number(out, cap > 0 ? workers_[m].count * per_second / cap : 0.0);
    out.append(",\"state\":");
    json_string(out, to_string(workers_[m].state));
    out.append(",\"skipped\":");
    if (keyed && r < skipped.size() && skipped[r])
      json_string(out, skipped[r]);
    else
      out.append("null");
    out.push_back('}');
  }
  out.append("],\"bound\":");
  json_number(out, s.capacity > 0 ? opts_.balance_factor * (s.count + inc) * per_second / s.capacity
                                  : std::nan(""));
  out.append(",\"remembered\":");
  if (e && e->worker < specs_.size())
    json_string(out, specs_[e->worker].name);
  else
    out.append("null");
  auto name_or_null = [&](const char* field, int w) {
    out.append(field);
    if (w >= 0)
      json_string(out, specs_[static_cast<std::size_t>(w)].name);
    else
      out.append("null");
  };
  name_or_null(",\"home\":", home);
  name_or_null(",\"chosen\":", chosen);
  name_or_null(",\"second\":", second);
  out.append(",\"reason\":");
  json_string(out, to_string(why));
  out.push_back('}');
  return out;
}

// ---- reconfiguration ------------------------------------------------------------------------

void placement::reconfigure(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                            placement_options opts) {
  // Bring every count to the current instant's scale (inc = 1), so a new half-life applies from
  // now on without distorting the estimates accumulated so far.
  for (auto& w : workers_)
    w.count /= inc_;
  epoch_ms_ = clock_ms_;
  inc_ = 1.0;

  const std::vector<worker_spec> old_specs = specs_;
  const std::vector<worker_rt> old_rt = workers_;
  const sip_key old_key = sip_;
  build(std::move(pools), std::move(workers), std::move(opts));

  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    by_name.emplace(specs_[i].name, i);
  std::vector<std::uint16_t> old_to_new(old_specs.size(), affinity_table::no_worker);
  for (std::size_t i = 0; i < old_specs.size(); ++i) {
    auto it = by_name.find(old_specs[i].name);
    if (it == by_name.end()) continue;
    old_to_new[i] = static_cast<std::uint16_t>(it->second);
    worker_rt& w = workers_[it->second];
    w.count = old_rt[i].count;
    w.state = old_rt[i].state;
    w.capacity = old_rt[i].capacity;
    w.up_since = old_rt[i].up_since;
    if (old_specs[i].pool == specs_[it->second].pool) w.over_since = old_rt[i].over_since;
  }
  if (sip_ == old_key) {
    table_.remap_workers(old_to_new);
    table_.forget_homes();  // a home is a position in a ranking over the old member lists
  } else {
    table_.clear();
  }
  view_.reset();
  tokens_ = std::min(tokens_, std::max(1.0, opts_.max_moves_per_second));
}

// ---- persistence ----------------------------------------------------------------------------

bool placement::save_snapshot(const std::string& path, std::uint64_t now_ms,
                              std::string* error) const {
  return save_snapshot(path, now_ms, 0, error);
}

snapshot::document placement::snapshot_document(std::uint64_t now_ms,
                                                std::uint64_t unix_now_ms) const {
  if (unix_now_ms == 0) unix_now_ms = system_unix_ms();
  now_ms = std::max(now_ms, clock_ms_);
  snapshot::document doc;
  doc.hash_key_id = key_fingerprint(sip_);
  for (const auto& s : specs_)
    doc.workers.push_back(s.name);
  doc.entries.reserve(table_.size());
  // Slot order, not LRU order: a sequential scan instead of a pointer chase across the table
  // (1M keys: the LRU walk took ~160 ms on the event loop, this scan ~18 ms). write_snapshot
  // sorts by last use, off the loop, so files stay oldest first.
  table_.for_each_slot([&](const affinity_table::entry& e) {
    if (e.worker >= specs_.size()) return;  // its worker left: nothing worth keeping
    const std::uint64_t age = now_ms > e.last_used_ms ? now_ms - e.last_used_ms : 0;
    doc.entries.push_back({e.hash, e.worker, unix_now_ms > age ? unix_now_ms - age : 0});
  });
  return doc;
}

bool write_snapshot(const std::string& path, snapshot::document doc, std::string* error) {
  try {
    // Oldest first: the loader keeps the newest entries when the file holds more than max_keys,
    // and inserting in this order rebuilds the LRU order.
    std::stable_sort(doc.entries.begin(), doc.entries.end(),
                     [](const snapshot::entry& a, const snapshot::entry& b) {
                       return a.last_used_unix_ms < b.last_used_unix_ms;
                     });
    return snapshot::write_file_atomic(path, snapshot::encode(doc), error);
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
    return false;
  }
}

bool placement::save_snapshot(const std::string& path, std::uint64_t now_ms,
                              std::uint64_t unix_now_ms, std::string* error) const {
  try {
    return write_snapshot(path, snapshot_document(now_ms, unix_now_ms), error);
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
    return false;
  }
}

std::string placement::load_snapshot(const std::string& path, std::uint64_t now_ms) {
  return load_snapshot(path, now_ms, 0);
}

std::string placement::load_snapshot(const std::string& path, std::uint64_t now_ms,
                                     std::uint64_t unix_now_ms) {
  try {
    if (unix_now_ms == 0) unix_now_ms = system_unix_ms();
    now_ms = advance(now_ms);
    // An entry is at most 29 bytes (fixarray + 3 x uint64); names are bounded too.
    const std::size_t max_bytes =
        table_.max_keys() * 29 + max_workers * (snapshot::max_worker_name + 5) + 4096;
    std::string bytes, err;
    switch (snapshot::read_file(path, max_bytes, &bytes, &err)) {
      case snapshot::read_status::missing:
        return "missing";
      case snapshot::read_status::too_large:
        return "ignored: larger than max_keys allows";
      case snapshot::read_status::error:
        return "ignored: " + err;
      case snapshot::read_status::ok:
        break;
    }
    snapshot::decode_result r = snapshot::decode(bytes, table_.max_keys(), max_workers);
    if (!r.ok) return "ignored: " + r.error;
    if (r.doc.hash_key_id != key_fingerprint(sip_)) return "ignored: written with another hash_key";
    std::unordered_map<std::string_view, std::size_t> by_name;
    for (std::size_t i = 0; i < specs_.size(); ++i)
      by_name.emplace(specs_[i].name, i);
    std::vector<std::uint16_t> map(r.doc.workers.size(), affinity_table::no_worker);
    for (std::size_t i = 0; i < r.doc.workers.size(); ++i) {
      auto it = by_name.find(r.doc.workers[i]);
      if (it != by_name.end()) map[i] = static_cast<std::uint16_t>(it->second);
    }
    std::size_t restored = 0, skipped = 0;
    table_.reserve(table_.size() + r.doc.entries.size());
    for (const auto& se : r.doc.entries) {
      const std::uint64_t age =
          unix_now_ms > se.last_used_unix_ms ? unix_now_ms - se.last_used_unix_ms : 0;
      const bool expired = opts_.affinity_ttl_ms != 0 && age >= opts_.affinity_ttl_ms;
      if (se.worker >= map.size() || map[se.worker] == affinity_table::no_worker || expired ||
          table_.peek(se.hash, now_ms) != nullptr) {
        ++skipped;
        continue;
      }
      const std::uint64_t last = now_ms > age ? now_ms - age : 0;
      table_.insert(se.hash, map[se.worker], affinity_table::no_rank, last);
      ++restored;
    }
    std::string status = "restored " + std::to_string(restored) + " keys";
    if (skipped) status += " (" + std::to_string(skipped) + " skipped)";
    return status;
  } catch (const std::exception& ex) {
    return std::string("ignored: ") + ex.what();
  }
}

const placement::stats& placement::counters() const noexcept {
  stats_.evictions_lru = table_.evictions_lru();
  stats_.evictions_ttl = table_.evictions_ttl();
  stats_.entries = table_.size();
  return stats_;
}

}  // namespace spoa::routing
