// placement::decide(): the whole decision for one request, const. place() applies it
// (placement.cpp) and explain() prints it (placement_explain.cpp), so the rules of placement.hpp
// are written here once.

#include <algorithm>
#include <cmath>
#include <limits>

#include "routing/placement.hpp"
#include "routing/rendezvous.hpp"

namespace spoa::routing {

void placement::rank(const pool_rt& p, std::uint64_t key_hash) const noexcept {
  // Scores into the reserved scratch_, then one sort by (score, name), a strict total order, so
  // the ranking is the same whatever the algorithm. An insertion sort here made a miss cost
  // 5.2 us at 64 workers (bench_placement growth_miss/1000000/64); std::sort is n log n and
  // still an insertion sort for the usual handful of workers.
  scratch_.clear();
  for (std::uint16_t m : p.members)
    scratch_.push_back(
        {m, rendezvous_score(key_hash, workers_[m].seed, workers_[m].weight), skip::none});
  std::sort(scratch_.begin(), scratch_.end(),
            [this](const ranked_worker& a, const ranked_worker& b) {
              return ranks_before(a.score, specs_[a.worker].name, b.score, specs_[b.worker].name);
            });
}

placement::choice placement::select(double bound, int exclude, const pool_sums& s) const noexcept {
  choice c;
  const std::size_t n = scratch_.size();
  if (n == 0) return c;
  c.first = scratch_[0].worker;
  for (std::size_t r = 0; r < n; ++r) {
    ranked_worker& rw = scratch_[r];
    const std::uint16_t m = rw.worker;
    if (static_cast<int>(m) == exclude)
      rw.why = skip::current;
    else if (workers_[m].state == worker_state::down)
      rw.why = skip::down;
    else if (drained(m))
      rw.why = skip::drain;
    else if (capacity_of(m) <= 0)
      rw.why = skip::no_capacity;
    else if (workers_[m].state == worker_state::stalled)
      rw.why = skip::stalled;
    else if (!takes_new(m, s))
      rw.why = skip::hot;
    else if (!(load_count(m) / capacity_of(m) < bound))
      rw.why = skip::over_bound;
    if (rw.why == skip::none) {
      c.worker = m;
      c.rank = static_cast<int>(r);
      return c;
    }
    if (rw.why == skip::over_bound) c.spilled = true;
  }
  // Nobody under the bound (only possible through rounding): the least loaded eligible worker.
  double best = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const std::uint16_t m = scratch_[r].worker;
    if (static_cast<int>(m) == exclude || !takes_new(m, s)) continue;
    const double l = load_count(m) / capacity_of(m);
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
    const int m = scratch_[r].worker;
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
      if (scratch_[r].worker != exclude) {
        next = scratch_[r].worker;
        next_rank = static_cast<int>(r);
      }
    }
  }
  if (rank) *rank = next_rank;
  return next;
}

int placement::rank_in_scratch(int worker) const noexcept {
  for (std::size_t r = 0; r < scratch_.size(); ++r)
    if (scratch_[r].worker == worker) return static_cast<int>(r);
  return -1;
}

int placement::return_target(std::uint16_t entry_rank, int current, const pool_sums& s,
                             double bound, std::uint64_t now_ms) const noexcept {
  if (opts_.return_per_second <= 0 || !affinity_table::is_displaced(entry_rank)) return -1;
  const std::size_t h = affinity_table::home_rank(entry_rank);
  if (h >= scratch_.size()) return -1;
  const std::uint16_t home = scratch_[h].worker;
  if (home == current || !takes_new(home, s)) return -1;
  const std::uint64_t up = workers_[home].up_since;
  if (up == never || now_ms < up || now_ms - up < ms(opts_.return_after)) return -1;
  if (!(load_count(home) / capacity_of(home) < bound)) return -1;
  return home;
}

int placement::least_loaded(const pool_rt& p, const pool_sums& s, int exclude) const noexcept {
  int best = -1;
  double best_load = 0;
  for (std::uint16_t m : p.members) {  // by name: ties go to the smaller name
    if (static_cast<int>(m) == exclude || !takes_new(m, s)) continue;
    const double l = load_count(m) / capacity_of(m);
    if (best < 0 || l < best_load) {
      best = m;
      best_load = l;
    }
  }
  return best;
}

plan placement::decide(int pool, std::string_view key, std::uint64_t now_ms) const noexcept {
  const bool keyed = pool >= 0 && static_cast<std::size_t>(pool) < pools_.size() &&
                     pool_specs_[static_cast<std::size_t>(pool)].keyed && !key.empty();
  return decide_hashed(pool, keyed, keyed ? key_hash(key) : 0, now_ms, true);
}

plan placement::decide_hashed(int pool, bool keyed, std::uint64_t key_hash, std::uint64_t now_ms,
                              bool full_ranking) const noexcept {
  plan pl;
  pl.bound = std::numeric_limits<double>::quiet_NaN();
  if (pool < 0 || static_cast<std::size_t>(pool) >= pools_.size()) return pl;
  pl.pool = pool;
  const pool_rt& p = pools_[static_cast<std::size_t>(pool)];
  if (p.members.empty()) return pl;
  now_ms = std::max(now_ms, clock_ms_);
  const double inc = increment_at(now_ms);
  const pool_sums s = sums(p);
  if (s.capacity > 0) pl.bound = opts_.balance_factor * (s.count + inc) / s.capacity;

  pl.keyed = keyed;
  if (!pl.keyed) {
    pl.ranking = p.by_name;
    const int w = least_loaded(p, s, -1);
    decision& d = pl.answer;
    d.worker = w < 0 ? p.members.front() : w;
    d.why = w < 0 ? reason::fallback : reason::least_loaded;
    d.second = least_loaded(p, s, d.worker);
    if (d.second < 0) {  // nobody else eligible: any other member, by name
      for (std::uint16_t m : p.members)
        if (static_cast<int>(m) != d.worker) {
          d.second = m;
          break;
        }
    }
    return pl;
  }
  pl.answer.key_hash = key_hash;
  pl.table_hash = table_hash(p, key_hash);
  decide_keyed(pl, p, s, now_ms, full_ranking);
  return pl;
}

int placement::hit_second(const pool_rt& p, std::uint64_t key_hash, int current,
                          const pool_sums& s) const noexcept {
  if (!p.equal_weights) return -1;
  int best = -1;
  double u1 = 0, u2 = 0;  // the best and second-best inputs among eligible members
  for (std::uint16_t m : p.members) {
    if (static_cast<int>(m) == current || !takes_new(m, s)) continue;
    const double u = hash_to_unit(mix64(key_hash ^ workers_[m].seed));
    if (best < 0 || u > u1) {
      u2 = best < 0 ? 0 : u1;
      u1 = u;
      best = m;
    } else if (u > u2) {
      u2 = u;
    }
  }
  // -1/ln(u) keeps the order of u wherever the inputs differ by far more than log's and the
  // division's rounding (under an ulp each), relative to |ln u| <= 37.5 for every u in (0, 1).
  // Closer inputs (probability ~2^-27 per key) are ranked exactly, by score then name.
  if (best < 0 || u1 - u2 <= 0x1p-27 * u1) return -1;
  return best;
}

void placement::decide_keyed(plan& pl, const pool_rt& p, const pool_sums& s, std::uint64_t now_ms,
                             bool full_ranking) const noexcept {
  decision& d = pl.answer;
  const double bound = std::isnan(pl.bound) ? 0 : pl.bound;
  // place() has already prefetched the slot, right after hashing the key.
  pl.table_slot = table_.slot(pl.table_hash);
  const affinity_table::entry* e = table_.peek_at(pl.table_slot, now_ms);
  const move_cause mk = e ? must_move(pl.pool, e->worker, now_ms) : move_cause::none;
  const int current = e ? e->worker : -1;
  // A plain hit (stays, not displaced) needs only its second choice, not the ranking: place()
  // takes it without ranking when that is certain (hit_second()); explain and tests rank.
  if (!full_ranking && e && mk == move_cause::none && !affinity_table::is_displaced(e->rank)) {
    const int second = hit_second(p, d.key_hash, current, s);
    if (second >= 0) {
      pl.remembered = current;
      d.worker = current;
      d.why = reason::affinity_hit;
      d.rank = e->rank == affinity_table::no_rank ? -1 : e->rank;
      d.second = second;
      return;
    }
  }
  rank(p, d.key_hash);
  pl.ranking = scratch_;
  // The skip reasons a key leaving `current` (or a new key) meets.
  const int exclude = e && mk != move_cause::removed && mk != move_cause::none ? current : -1;
  const choice c = select(bound, exclude, s);
  auto answer = [&](int worker, reason why, int rank) {
    d.worker = worker;
    d.why = why;
    d.rank = rank;
    d.second = second_choice(worker, s);
  };
  if (!e) {  // a new key
    if (c.worker < 0) return answer(c.first, reason::fallback, 0);
    pl.store = plan::store_op::insert;
    pl.stored_rank = static_cast<std::uint16_t>(c.rank);
    return answer(c.worker, c.spilled ? reason::spill : reason::new_key, c.rank);
  }
  pl.remembered = current < static_cast<int>(specs_.size()) ? current : -1;
  const bool displaced = affinity_table::is_displaced(e->rank);
  if (displaced) {
    const std::size_t h = affinity_table::home_rank(e->rank);
    if (h < scratch_.size()) pl.home = scratch_[h].worker;
  }
  // The key stays on `current`: its rank as placed, or where it now stands if displaced.
  auto stay = [&] {
    const int rank = e->rank == affinity_table::no_rank ? -1
                     : displaced                        ? rank_in_scratch(current)
                                                        : e->rank;
    answer(current, reason::affinity_hit, rank);
  };
  switch (mk) {
    case move_cause::none: {
      const int home = displaced ? return_target(e->rank, current, s, bound, now_ms) : -1;
      if (home < 0 || !return_token_available(p, now_ms)) return stay();
      pl.move = move_cause::returned;
      pl.store = plan::store_op::update;
      pl.take_return_token = true;
      pl.stored_rank = affinity_table::home_rank(e->rank);
      return answer(home, reason::moved, pl.stored_rank);
    }
    case move_cause::drain:
    case move_cause::overload:
      if (!token_available(now_ms) || c.worker < 0) return stay();
      pl.move = mk;
      pl.store = plan::store_op::update;
      pl.take_move_token = true;
      // A displaced key keeps its home unless this move took it there.
      pl.stored_rank = !displaced || static_cast<int>(affinity_table::home_rank(e->rank)) == c.rank
                           ? static_cast<std::uint16_t>(c.rank)
                           : e->rank;
      return answer(c.worker, reason::moved, c.rank);
    case move_cause::down: {
      // To the second choice: the worker HAProxy was told as server2.
      int target_rank = -1;
      const int target = second_choice(current, s, &target_rank);
      if (target < 0 || !takes_new(static_cast<std::size_t>(target), s)) {
        // Nowhere to go: the first-ranked worker; the remembered placement is kept so the key
        // returns when its worker does.
        return answer(scratch_[0].worker, reason::fallback, 0);
      }
      int home_rank = displaced ? affinity_table::home_rank(e->rank) : rank_in_scratch(current);
      if (home_rank >= static_cast<int>(affinity_table::displaced)) home_rank = -1;
      pl.move = move_cause::down;
      pl.store = plan::store_op::update;
      pl.stored_rank = home_rank < 0 || home_rank == target_rank
                           ? static_cast<std::uint16_t>(target_rank)
                           : static_cast<std::uint16_t>(affinity_table::displaced | home_rank);
      return answer(target, reason::moved, target_rank);
    }
    case move_cause::removed:
    case move_cause::returned:
    case move_cause::operator_:  // never a must_move() cause (move_now)
      break;
  }
  // Its worker was removed by a reconfiguration: placed afresh, as a new key.
  if (c.worker < 0) {
    pl.store = plan::store_op::erase;
    return answer(c.first, reason::fallback, 0);
  }
  pl.move = move_cause::removed;
  pl.store = plan::store_op::update;
  pl.stored_rank = static_cast<std::uint16_t>(c.rank);
  answer(c.worker, reason::moved, c.rank);
}

}  // namespace spoa::routing
