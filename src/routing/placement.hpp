#pragma once
// Placement: which worker of a pool serves a request, given its affinity key.
//
//   new key      -> weighted rendezvous ranking of the pool's workers (rendezvous.hpp), keyed
//                   SipHash so crafted keys cannot aim at a worker; the first worker in that
//                   ranking that may take new keys and is under the load bound takes it
//                   ("consistent hashing with bounded loads", Mirrokni, Thorup & Zadimoghaddam,
//                   SODA 2018, arXiv:1608.01350, applied to the rendezvous order).
//   known key    -> the remembered worker (affinity_table.hpp), unless it left, is down, drained,
//                   or persistently overloaded; then the key moves to its next eligible worker.
//
// Threading: one event-loop thread owns a placement object and calls every member, including
// set_load(). There is no lock anywhere, which is why a decision never blocks: the SPOP path and
// the scraper share the thread and the scraper publishes an immutable load_view by pointer swap.
//
// Load: load(w) = r(w) / (weight(w) * capacity(w)), r(w) = this agent's own request rate to w,
// an exponentially decayed count with half-life load_half_life_ms; capacity(w) comes from the
// load_view (unknown = 1). The pool average is sum r / sum (weight * capacity) over the workers
// that can take keys (not down, not drained, capacity > 0).
//
// Bound (the MTZ rule): a worker takes a new key when load(w) BEFORE this request is below
// balance_factor x the pool average AFTER it. With integer counts this is exactly MTZ's
// "count + 1 <= ceil(c (m + 1) / n)"; unlike "load after <= c x average" it always admits the
// least loaded worker, so a cold pool is not mistaken for an overloaded one.
//
// Eligibility for new keys: not down, not stalled, not drained, capacity > 0, and not hot while
// another eligible worker of the pool is not hot. A remembered key stays while load shifts (and
// while its worker is stalled); it moves
//   - at once when its worker is down, to its second choice (below), or when its worker was
//     removed by a reconfiguration (re-placed as a new key),
//   - gradually (token bucket of max_moves_per_second, burst = one second) when its worker is
//     drained, or has been overloaded for overload_after_ms: above overload_factor x the pool
//     average AND strained by the load source's account (hot, or capacity < 1; capacity 0 is
//     always overloaded). Rate imbalance alone does not count: a single busy room makes any
//     worker look "overloaded", and moving it would just ping-pong it between workers,
// each to its next-ranked eligible worker under the bound. If none exists it stays (or, for a
// down worker, the decision falls back to the first-ranked worker without remembering it).
//
// Second choice (decision::second, HAProxy's txn.synapse.server2): the first worker after the
// chosen one in the key's rendezvous ranking that is eligible for new keys, ignoring the bound
// (else simply the next-ranked one). It is where the key goes if its worker is down — the agent's
// own move on down picks exactly it — so HAProxy, skipping a server it has marked DOWN before the
// agent has, sends the key to the same single alternate: the room stays whole. Unkeyed pools: the
// least loaded eligible worker other than the chosen one.
//
// Sticky home: a key moved because its worker was down remembers that worker as its home (its
// position in the key's ranking, in the entry's rank field: affinity_table.hpp). Once home has
// been up (neither down nor stalled) for return_after_ms, the key's next request moves it back if
// home is eligible for new keys and under the bound, and a token of the pool's bucket
// (return_per_second, burst one second's worth, at least 1) is available; else it stays and asks
// again on its next request. Homes are forgotten by a reconfiguration and are not in snapshots.
// A worker coming back from down or stalled starts at the pool's average request rate (its own
// has decayed to about nothing), so it takes new keys at its ranking share instead of all of them.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "routing/affinity_table.hpp"
#include "routing/load_view.hpp"
#include "routing/siphash.hpp"
#include "routing/snapshot.hpp"

namespace spoa::routing {

struct pool_spec {
  std::string name;
  bool keyed = true;  // balance: affinity (false = least_loaded)
};

struct worker_spec {
  std::string name;
  std::string server;
  int pool = -1;  // index into the pools; -1 = no inbound HTTP (not placed)
  double weight = 1.0;
  bool drain = false;
};

struct placement_options {
  double balance_factor = 1.25;
  double overload_factor = 2.0;
  std::uint64_t overload_after_ms = 10'000;
  std::uint64_t affinity_ttl_ms = 3'600'000;  // 0 = no idle expiry
  std::size_t max_keys = 1'000'000;
  double max_moves_per_second = 50.0;  // 0 = drained/overloaded keys never move
  std::string hash_key;
  std::uint64_t load_half_life_ms = 10'000;
  std::uint64_t return_after_ms = 30'000;  // home up this long before displaced keys return
  double return_per_second = 2.0;          // per pool; 0 = displaced keys never return
};

enum class reason : std::uint8_t { affinity_hit, new_key, spill, moved, least_loaded, fallback };
// fallback = no worker of the pool can take the request: the first-ranked worker anyway
// (HAProxy's own health checks then decide), or worker -1 for an unknown or empty pool.
// least_loaded = unkeyed pool or empty key.

std::string_view to_string(reason r) noexcept;

struct decision {
  int worker = -1;
  reason why = reason::fallback;
  // Position of `worker` in the key's rendezvous ranking over all the pool's workers (0 = first
  // choice). For an affinity hit, the rank it had when it was placed; -1 when unknown (restored
  // from a snapshot). 0 for least_loaded.
  int rank = 0;
  std::uint64_t key_hash = 0;  // SipHash of the key (0 without a key); for logs
  int second = -1;             // the second choice (see above); -1 when the pool has no other
};

// Sorts (oldest first), encodes and writes a snapshot document (temp file + fsync + rename).
// Thread-safe: touches only its arguments and the file system.
bool write_snapshot(const std::string& path, snapshot::document doc, std::string* error);

class placement {
 public:
  // Throws std::invalid_argument on inconsistent specs (pool index out of range, weight not
  // finite and > 0, duplicate worker names, more than 65534 workers): config-time only, after
  // the config loader has validated the file.
  placement(std::vector<pool_spec> pools, std::vector<worker_spec> workers, placement_options opts);

  // Cheap: copies each worker's state and capacity out of the view (O(workers)). A null view or
  // a view shorter than the worker list means "unknown" = healthy at capacity 1. `now_ms` dates
  // a worker's return from down or stalled (for return_after_ms); the one-argument form uses the
  // latest time place() has seen.
  void set_load(std::shared_ptr<const load_view> view);
  void set_load(std::shared_ptr<const load_view> view, std::uint64_t now_ms);

  // Hot path: looks up / assigns the key, records one request on the chosen worker, returns the
  // decision. Allocation-free on an affinity hit (a new key may grow the table). now_ms must come
  // from a monotonic clock; a smaller value than before is treated as the previous one.
  decision place(int pool, std::string_view key, std::uint64_t now_ms) noexcept;

  // The decision place() would take, without changing anything, as one JSON object:
  // {"pool":..,"key_hash":"<16 hex>","ranking":[{"worker":..,"server":..,"score":..,"weight":..,
  //  "capacity":..,"load":..,"state":"healthy","skipped":null|"down"|"drain"|"no capacity"|
  //  "stalled"|"hot"|"over bound"|"current"},...],"bound":..,"remembered":"room3"|null,
  //  "home":"room1"|null,"chosen":"room3"|null,"second":"room2"|null,"reason":"new_key"}
  // `home` is set for a key displaced by a down worker (see "Sticky home").
  // load and bound are in requests per second per unit of weight x capacity. "skipped" explains,
  // in ranking order, why the workers before the new-key choice were passed over.
  std::string explain(int pool, std::string_view key, std::uint64_t now_ms) const;

  // Reload: remembered keys are kept by worker name; keys of workers that disappeared (or changed
  // pool) move as on "down". A different hash_key forgets every remembered key (their hashes
  // mean nothing under the new key). Load estimates carry over by name; call set_load() with a
  // view for the new worker list afterwards. Throws like the constructor.
  void reconfigure(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
                   placement_options opts);
  // Unknown names are ignored. Draining takes the worker out of new placements at once and moves
  // its remembered keys away at max_moves_per_second as they are requested.
  void set_drain(const std::string& worker, bool drain);

  // Drops up to `limit` idle entries (place() already drops a few per call); for a timer.
  std::size_t expire(std::uint64_t now_ms, std::size_t limit = 1024) noexcept;

  // Persistence (format in snapshot.hpp). save: temp file + fsync + rename (+ fsync of the
  // directory); false with *error set on failure. load never throws and returns a status:
  // "restored N keys", "missing", "ignored: truncated", "ignored: version 7 != 1", ...
  // Ages are carried through the file as Unix times; unix_now_ms = 0 reads the system clock.
  bool save_snapshot(const std::string& path, std::uint64_t now_ms, std::string* error) const;
  bool save_snapshot(const std::string& path, std::uint64_t now_ms, std::uint64_t unix_now_ms,
                     std::string* error) const;
  // The copy step of save_snapshot alone (cheap, on the owning thread); encode and write it
  // elsewhere with write_snapshot() so the event loop never waits on msgpack or fsync.
  snapshot::document snapshot_document(std::uint64_t now_ms, std::uint64_t unix_now_ms = 0) const;
  std::string load_snapshot(const std::string& path, std::uint64_t now_ms);
  std::string load_snapshot(const std::string& path, std::uint64_t now_ms,
                            std::uint64_t unix_now_ms);

  struct stats {
    std::uint64_t decisions[6];  // indexed by reason
    std::uint64_t moves_down, moves_drain, moves_overload, moves_removed, evictions_lru,
        evictions_ttl;
    std::uint64_t moves_returned;  // displaced keys back on their home worker
    std::size_t entries;
  };
  const stats& counters() const noexcept;
  // Remembered keys placed on a worker (index into workers()), exact.
  std::size_t keys_on(int worker) const noexcept {
    return worker >= 0 ? table_.keys_on(static_cast<std::uint16_t>(worker)) : 0;
  }
  const std::vector<worker_spec>& workers() const noexcept { return specs_; }
  const std::vector<pool_spec>& pools() const noexcept { return pool_specs_; }
  const placement_options& options() const noexcept { return opts_; }
  std::uint64_t key_hash(std::string_view key) const noexcept { return siphash24(sip_, key); }
  const affinity_table& table() const noexcept { return table_; }

 private:
  static constexpr std::uint64_t never = ~std::uint64_t{0};

  struct worker_rt {
    std::uint64_t seed = 0;
    double weight = 1.0;
    worker_state state = worker_state::unknown;
    double capacity = 1.0;
    double count = 0;  // decayed request count, scaled by 2^((t - epoch_ms_) / half-life)
    std::uint64_t over_since = never;
    std::uint64_t up_since = 0;  // not down nor stalled since (placement clock); never = it is
    bool returning = false;      // set_load() scratch: up again in this view
  };
  struct pool_rt {
    std::uint64_t salt = 0;              // mixed into table hashes: one key, one entry per pool
    std::vector<std::uint16_t> members;  // worker indices, by name
    std::uint64_t evaluated_at = never;  // last overload evaluation (now_ms)
    double return_tokens = 0;            // sticky-home bucket (see above)
    std::uint64_t return_tokens_at_ms = 0;
  };
  enum class move_kind : std::uint8_t { none, down, removed, drain, overload };
  struct choice {
    int worker = -1;
    int rank = 0;
    bool spilled = false;
    int first = -1;  // the first-ranked member regardless of eligibility (fallback)
  };
  struct pool_sums {
    double count = 0;
    double capacity = 0;  // sum of weight x capacity over usable workers
    bool has_cool = false;
  };

  void build(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
             placement_options opts);
  std::uint64_t advance(std::uint64_t now_ms) noexcept;
  double increment_at(std::uint64_t now_ms) const noexcept;
  double capacity_of(std::size_t w) const noexcept {
    return workers_[w].weight * workers_[w].capacity;
  }
  bool usable(std::size_t w) const noexcept;
  bool takes_new(std::size_t w, const pool_sums& s) const noexcept;
  pool_sums sums(const pool_rt& p) const noexcept;
  void evaluate_overload(pool_rt& p, std::uint64_t now_ms) noexcept;
  bool overloaded(std::size_t w, std::uint64_t now_ms) const noexcept;
  move_kind must_move(int pool, std::uint16_t worker, std::uint64_t now_ms) const noexcept;
  bool token_available(std::uint64_t now_ms) const noexcept;
  void take_token(std::uint64_t now_ms) noexcept;
  // Ranks the pool's members for the key into scratch_ (no allocation: reserved).
  void rank_members(const pool_rt& p, std::uint64_t key_hash) const noexcept;
  // Ranks the pool's members for the key into scratch_ and picks the first eligible one under
  // the bound, skipping `exclude`. skipped (optional) gets one reason per rank.
  choice select(const pool_rt& p, std::uint64_t key_hash, double inc, int exclude,
                std::vector<const char*>* skipped) const;
  // Over the ranking in scratch_: the first worker other than `exclude` that takes new keys,
  // else the next-ranked one after `exclude`; -1 for a pool of one. Sets *rank when not null.
  int second_choice(int exclude, const pool_sums& s, int* rank = nullptr) const noexcept;
  int rank_in_scratch(int worker) const noexcept;  // -1 when absent
  // The home a displaced entry may return to now (ranking in scratch_), or -1; ignores tokens.
  int return_target(std::uint16_t entry_rank, int current, const pool_sums& s, double inc,
                    std::uint64_t now_ms) const noexcept;
  bool return_token_available(const pool_rt& p, std::uint64_t now_ms) const noexcept;
  void take_return_token(pool_rt& p, std::uint64_t now_ms) noexcept;
  int second_least_loaded(const pool_rt& p, int exclude) const noexcept;
  int least_loaded(const pool_rt& p) const noexcept;
  std::uint64_t table_hash(const pool_rt& p, std::uint64_t key_hash) const noexcept {
    return mix64(key_hash ^ p.salt);
  }

  std::vector<pool_spec> pool_specs_;
  std::vector<worker_spec> specs_;
  placement_options opts_;
  sip_key sip_;
  std::vector<worker_rt> workers_;
  std::vector<pool_rt> pools_;
  std::shared_ptr<const load_view> view_;
  affinity_table table_;
  // Decayed-rate clock: one request at time t adds 2^((t - epoch_ms_) / half-life) to its
  // worker's count. All counts share the scale, so comparisons need no per-worker decay; the
  // epoch is moved (and all counts rescaled) every 64 half-lives to keep the numbers finite.
  std::uint64_t epoch_ms_ = 0;
  std::uint64_t clock_ms_ = 0;
  double inc_ = 1.0;
  double tokens_ = 0;
  std::uint64_t tokens_at_ms_ = 0;
  mutable std::vector<std::pair<double, std::uint16_t>> scratch_;  // reserved: no allocation
  mutable stats stats_{};
};

}  // namespace spoa::routing
