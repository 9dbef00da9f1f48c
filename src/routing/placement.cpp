#include "routing/placement.hpp"

#include <algorithm>
#include <cmath>
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

std::string_view to_string(move_cause c) noexcept {
  switch (c) {
    case move_cause::none:
      return "none";
    case move_cause::down:
      return "down";
    case move_cause::removed:
      return "removed";
    case move_cause::drain:
      return "drain";
    case move_cause::overload:
      return "overload";
    case move_cause::returned:
      return "returned";
    case move_cause::operator_:
      return "operator";
  }
  return "none";
}

std::string_view to_string(skip s) noexcept {
  switch (s) {
    case skip::none:
      return "";
    case skip::current:
      return "current";
    case skip::down:
      return "down";
    case skip::drain:
      return "drain";
    case skip::no_capacity:
      return "no capacity";
    case skip::stalled:
      return "stalled";
    case skip::hot:
      return "hot";
    case skip::over_bound:
      return "over bound";
  }
  return "";
}

placement::placement(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                     placement_options opts)
    : table_(opts.max_keys, ms(opts.affinity_ttl)) {
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
  if (opts.load_half_life.count() <= 0) opts.load_half_life = std::chrono::milliseconds{1};

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
  for (auto& pr : pools_) {
    pr.return_tokens = std::max(1.0, opts_.return_per_second);
    for (std::uint16_t m : pr.members) {
      if (specs_[m].weight != specs_[pr.members.front()].weight) pr.equal_weights = false;
      pr.by_name.push_back({m, 0, skip::none});
    }
  }
  scratch_.clear();
  scratch_.reserve(largest);
  table_.set_limits(opts_.max_keys, ms(opts_.affinity_ttl));
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
    w.source_drain = l.drain;
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
      count += load_count(m);  // with the peers' part: the others compare at count + remote
      cap += capacity_of(m);
    }
    if (cap <= 0) continue;
    for (std::uint16_t m : p.members)
      if (workers_[m].returning)
        workers_[m].count =
            std::max(workers_[m].count, count / cap * capacity_of(m) - workers_[m].remote);
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

void placement::set_peer_rates(const std::vector<double>& rps, std::uint64_t now_ms) noexcept {
  // rate = count x rate_scale(now): a peer's rate enters at the scale of this instant and then
  // decays with the own counts' half-life until the next report replaces it.
  const double scale = rate_scale(now_ms);
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    const double r = w < rps.size() ? rps[w] : 0.0;
    workers_[w].remote = std::isfinite(r) && r > 0 && scale > 0 ? r / scale : 0.0;
  }
  for (auto& p : pools_)
    p.evaluated_at = never;
}

double placement::own_rate(int worker, std::uint64_t now_ms) const noexcept {
  if (worker < 0 || static_cast<std::size_t>(worker) >= workers_.size()) return 0.0;
  return workers_[static_cast<std::size_t>(worker)].count * rate_scale(now_ms);
}

// ---- load -----------------------------------------------------------------------------------

double placement::increment_at(std::uint64_t now_ms) const noexcept {
  // At the clock's own instant it is inc_ (advance() keeps inc_ = this formula at clock_ms_), so
  // place(), which has just advanced the clock, pays no second exp2.
  if (now_ms <= clock_ms_) return inc_;
  return std::exp2(static_cast<double>(now_ms - epoch_ms_) /
                   static_cast<double>(ms(opts_.load_half_life)));
}

std::uint64_t placement::advance(std::uint64_t now_ms) noexcept {
  if (now_ms <= clock_ms_) return clock_ms_;
  clock_ms_ = now_ms;
  const double e =
      static_cast<double>(now_ms - epoch_ms_) / static_cast<double>(ms(opts_.load_half_life));
  if (e > renormalize_after_half_lives) {
    const double f = std::exp2(-e);
    for (auto& w : workers_) {
      w.count *= f;
      w.remote *= f;
    }
    epoch_ms_ = now_ms;
    inc_ = 1.0;
  } else {
    inc_ = std::exp2(e);
  }
  return now_ms;
}

bool placement::usable(std::size_t w) const noexcept {
  return workers_[w].state != worker_state::down && !drained(w) && capacity_of(w) > 0;
}

bool placement::takes_new(std::size_t w, const pool_sums& s) const noexcept {
  const worker_state st = workers_[w].state;
  return usable(w) && st != worker_state::stalled && (st != worker_state::hot || !s.has_cool);
}

placement::pool_sums placement::sums(const pool_rt& p) const noexcept {
  pool_sums s;
  for (std::uint16_t m : p.members) {
    if (!usable(m)) continue;
    s.count += load_count(m);
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
    if (w.state == worker_state::down || w.state == worker_state::stalled || drained(m) ||
        !strained)
      over = false;
    else if (cap <= 0)
      over = true;  // "take nothing": remembered keys leave gradually
    else
      over = s.capacity > 0 && load_count(m) / cap > limit;
    if (!over)
      w.over_since = never;
    else if (w.over_since == never)
      w.over_since = now_ms;
  }
}

bool placement::overloaded(std::size_t w, std::uint64_t now_ms) const noexcept {
  const std::uint64_t since = workers_[w].over_since;
  return since != never && now_ms >= since && now_ms - since >= ms(opts_.overload_after);
}

move_cause placement::must_move(int pool, std::uint16_t worker,
                                std::uint64_t now_ms) const noexcept {
  if (worker >= workers_.size() || specs_[worker].pool != pool) return move_cause::removed;
  if (workers_[worker].state == worker_state::down) return move_cause::down;
  if (drained(worker)) return move_cause::drain;
  if (overloaded(worker, now_ms)) return move_cause::overload;
  return move_cause::none;
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

// Sticky-home bucket, one per pool: return_per_second.
bool placement::return_token_available(const pool_rt& p, std::uint64_t now_ms) const noexcept {
  return refilled(p.return_tokens, p.return_tokens_at_ms, now_ms, opts_.return_per_second) >= 1.0;
}

void placement::take_return_token(pool_rt& p, std::uint64_t now_ms) noexcept {
  p.return_tokens =
      refilled(p.return_tokens, p.return_tokens_at_ms, now_ms, opts_.return_per_second) - 1.0;
  p.return_tokens_at_ms = std::max(now_ms, p.return_tokens_at_ms);
}

// ---- the hot path: decide (placement_decide.cpp), then apply ---------------------------------

decision placement::place(int pool, std::string_view key, std::uint64_t now_ms) noexcept {
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size() ||
      pools_[static_cast<std::size_t>(pool)].members.empty()) {
    ++stats_.decisions[static_cast<int>(reason::fallback)];
    return decision{};
  }
  pool_rt& p = pools_[static_cast<std::size_t>(pool)];
  const bool keyed = pool_specs_[static_cast<std::size_t>(pool)].keyed && !key.empty();
  // Hash the key first and start loading its table slot (a DRAM miss with a large table), so
  // the miss overlaps the rest of the decision instead of stalling it.
  const std::uint64_t kh = keyed ? key_hash(key) : 0;
  if (keyed) table_.prefetch(table_hash(p, kh));
  now_ms = advance(now_ms);
  table_.expire(now_ms, expire_per_call);
  if (keyed) evaluate_overload(p, now_ms);
  const plan pl = decide_hashed(pool, keyed, kh, now_ms, false);
  const decision& d = pl.answer;
  if (pl.keyed) {
    // find_at() refreshes the entry's last use (and drops it if idle past the TTL, which
    // decide()'s peek_at() already treated as absent). Nothing changed the table since decide().
    affinity_table::entry* e = table_.find_at(pl.table_slot, now_ms);
    if (pl.take_move_token) take_token(now_ms);
    if (pl.take_return_token) take_return_token(p, now_ms);
    if (pl.move != move_cause::none) ++stats_.moves[static_cast<int>(pl.move)];
    switch (pl.store) {
      case plan::store_op::keep:
        break;
      case plan::store_op::update:
        if (e) {
          table_.set_worker(*e, static_cast<std::uint16_t>(d.worker));
          e->rank = pl.stored_rank;
        }
        break;
      case plan::store_op::erase:
        table_.erase(pl.table_hash);
        break;
      case plan::store_op::insert:
        try {  // only the table's growth can throw (bad_alloc); the key then goes unremembered
          if (!e)
            table_.insert(pl.table_hash, static_cast<std::uint16_t>(d.worker), pl.stored_rank,
                          now_ms);
        } catch (...) {
        }
        break;
    }
  }
  workers_[static_cast<std::size_t>(d.worker)].count += inc_;
  ++stats_.decisions[static_cast<int>(d.why)];
  if (record_ && pl.keyed &&
      (pl.store == plan::store_op::insert ||
       (pl.store == plan::store_op::update && pl.move != move_cause::none))) {
    record(pl);
  }
  return d;
}

void placement::record_changes(bool on) {
  if (on) changes_.reserve(max_changes);
  record_ = on;
}

void placement::record(const plan& pl) noexcept {
  if (changes_.size() >= max_changes) {
    ++changes_dropped_;
    return;
  }
  change c;
  c.table_hash = pl.table_hash;
  c.pool = static_cast<std::uint16_t>(pl.pool);
  c.worker = static_cast<std::uint16_t>(pl.answer.worker);
  if (pl.store == plan::store_op::update) {
    c.old_worker =
        pl.remembered >= 0 ? static_cast<std::uint16_t>(pl.remembered) : affinity_table::no_worker;
    c.cause = pl.move;
  }
  changes_.push_back(c);  // record_changes() reserved max_changes entries: no allocation
}

int placement::move_now(int pool, std::string_view key, std::uint64_t now_ms) {
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size() || key.empty() ||
      !pool_specs_[static_cast<std::size_t>(pool)].keyed)
    return -1;
  now_ms = advance(now_ms);
  const pool_rt& p = pools_[static_cast<std::size_t>(pool)];
  const std::uint64_t kh = key_hash(key);
  const std::uint64_t th = table_hash(p, kh);
  affinity_table::entry* e = table_.find(th, now_ms);
  if (e == nullptr || e->worker == affinity_table::no_worker) return -1;
  const int current = e->worker;
  rank(p, kh);
  const pool_sums s = sums(p);
  const int next = second_choice(current, s);
  if (next < 0 || next == current || !takes_new(static_cast<std::size_t>(next), s)) return -1;
  table_.set_worker(*e, static_cast<std::uint16_t>(next));
  e->rank = affinity_table::no_rank;
  ++stats_.moves[static_cast<int>(move_cause::operator_)];
  if (record_) {
    if (changes_.size() < max_changes) {
      change c;
      c.table_hash = th;
      c.pool = static_cast<std::uint16_t>(pool);
      c.worker = static_cast<std::uint16_t>(next);
      c.old_worker = static_cast<std::uint16_t>(current);
      c.cause = move_cause::operator_;
      changes_.push_back(c);
    } else {
      ++changes_dropped_;
    }
  }
  return next;
}

bool placement::adopt(int pool, std::uint64_t table_hash, int worker, std::uint64_t now_ms) {
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size() || pool_of(worker) != pool)
    return false;
  now_ms = advance(now_ms);
  const auto w = static_cast<std::uint16_t>(worker);
  if (affinity_table::entry* e = table_.find(table_hash, now_ms)) {
    if (e->worker == w) return false;
    table_.set_worker(*e, w);
    e->rank = affinity_table::no_rank;
    return true;
  }
  try {
    return table_.insert(table_hash, w, affinity_table::no_rank, now_ms) != nullptr;
  } catch (...) {
    return false;
  }
}

std::uint64_t placement::table_hash_of(int pool, std::string_view key) const noexcept {
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size()) return 0;
  return table_hash(pools_[static_cast<std::size_t>(pool)], key_hash(key));
}

int placement::pool_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < pool_specs_.size(); ++i)
    if (pool_specs_[i].name == name) return static_cast<int>(i);
  return -1;
}

int placement::worker_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::size_t placement::expire(std::uint64_t now_ms, std::size_t limit) noexcept {
  return table_.expire(advance(now_ms), limit);
}

// ---- reconfiguration ------------------------------------------------------------------------

void placement::reconfigure(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                            placement_options opts) {
  // Pending shared-store changes name pools and workers by the old indices; the store
  // reconciles the whole table after a reload instead.
  changes_.clear();
  // Bring every count to the current instant's scale (inc = 1), so a new half-life applies from
  // now on without distorting the estimates accumulated so far.
  for (auto& w : workers_)
    w.count /= inc_;  // peers' rates are not carried over: the shared store sends them again
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
    w.source_drain = old_rt[i].source_drain;  // HAProxy's DRAIN holds until the next view
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

// ---- persistence (the file I/O is the shell's: agent/persistence.cpp) ------------------------

snapshot::document placement::snapshot_document(std::uint64_t now_ms,
                                                std::uint64_t unix_now_ms) const {
  now_ms = std::max(now_ms, clock_ms_);
  snapshot::document doc;
  doc.hash_key_id = key_fingerprint(sip_);
  for (const auto& s : specs_)
    doc.workers.push_back(s.name);
  doc.entries.reserve(table_.size());
  // Slot order, not LRU order: a sequential scan instead of a pointer chase across the table
  // (1M keys: the LRU walk took ~160 ms on the event loop, this scan ~18 ms). The writer sorts by
  // last use, off the loop, so files stay oldest first.
  table_.for_each_slot([&](const affinity_table::entry& e) {
    if (e.worker >= specs_.size()) return;  // its worker left: nothing worth keeping
    const std::uint64_t age = now_ms > e.last_used_ms ? now_ms - e.last_used_ms : 0;
    doc.entries.push_back({e.hash, e.worker, unix_now_ms > age ? unix_now_ms - age : 0});
  });
  return doc;
}

std::size_t placement::max_snapshot_bytes() const noexcept {
  // An entry is at most 29 bytes (fixarray + 3 x uint64); names are bounded too.
  return table_.max_keys() * 29 + max_workers * (snapshot::max_worker_name + 5) + 4096;
}

std::string placement::restore(const snapshot::document& doc, std::uint64_t now_ms,
                               std::uint64_t unix_now_ms) {
  now_ms = advance(now_ms);
  if (doc.hash_key_id != key_fingerprint(sip_)) return "ignored: written with another hash_key";
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    by_name.emplace(specs_[i].name, i);
  std::vector<std::uint16_t> map(doc.workers.size(), affinity_table::no_worker);
  for (std::size_t i = 0; i < doc.workers.size(); ++i) {
    auto it = by_name.find(doc.workers[i]);
    if (it != by_name.end()) map[i] = static_cast<std::uint16_t>(it->second);
  }
  std::size_t restored = 0, skipped = 0;
  table_.reserve(table_.size() + doc.entries.size());
  for (const auto& se : doc.entries) {
    const std::uint64_t age =
        unix_now_ms > se.last_used_unix_ms ? unix_now_ms - se.last_used_unix_ms : 0;
    const bool expired = ms(opts_.affinity_ttl) != 0 && age >= ms(opts_.affinity_ttl);
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
}

const placement::stats& placement::counters() const noexcept {
  stats_.evictions_lru = table_.evictions_lru();
  stats_.evictions_ttl = table_.evictions_ttl();
  stats_.entries = table_.size();
  return stats_;
}

}  // namespace spoa::routing
