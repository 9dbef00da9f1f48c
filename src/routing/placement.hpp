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
// an exponentially decayed count with half-life load_half_life_ms, plus the rates other agents
// report for w (set_peer_rates(): several HAProxy + agent pairs bound the sum, not N times the
// bound each; the peers' part decays like the own part until the next report); capacity(w) comes
// from the load_view (unknown = 1). The pool average is sum r / sum (weight * capacity) over the
// workers that can take keys (not down, not drained, capacity > 0).
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

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
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

// The placement component's options, with their documented defaults. The config file's
// `placement:` section is this struct (config/config.hpp embeds it), so a default lives here only.
struct placement_options {
  double balance_factor = 1.1;   // bounded load: new keys go to workers under this x the average
  double overload_factor = 2.0;  // remembered keys move off a worker above this x the average...
  std::chrono::milliseconds overload_after{10'000};  // ... for this long (and strained)
  std::chrono::milliseconds affinity_ttl{
      3'600'000};                      // idle time before a key is forgotten; 0 = never
  std::size_t max_keys = 1'000'000;    // LRU cap on remembered keys
  double max_moves_per_second = 50.0;  // gradual moves (drain, overload); 0 = never move
  std::string hash_key;                // secret for the keyed hash; the same on every agent
  std::chrono::milliseconds load_half_life{10'000};  // decay of the agent's own request rates
  // Sticky home: a key moved off a down worker returns once the worker has been up (neither down
  // nor stalled) this long, at most return_per_second keys per second per pool (0 = never).
  std::chrono::milliseconds return_after{30'000};
  double return_per_second = 2.0;

  bool operator==(const placement_options&) const = default;
};

enum class reason : std::uint8_t { affinity_hit, new_key, spill, moved, least_loaded, fallback };
// fallback = no worker of the pool can take the request: the first-ranked worker anyway
// (HAProxy's own health checks then decide), or worker -1 for an unknown or empty pool.
// least_loaded = unkeyed pool or empty key.
inline constexpr int reason_count = 6;

std::string_view to_string(reason r) noexcept;

// Why a ranked worker was passed over for a new key, in the order the checks are made.
enum class skip : std::uint8_t {
  none,
  current,
  down,
  drain,
  no_capacity,
  stalled,
  hot,
  over_bound
};
// "current", "down", "drain", "no capacity", "stalled", "hot", "over bound" ("" for none)
std::string_view to_string(skip s) noexcept;

// What applying a plan does to the key's remembered placement.
// operator: `synapse-spoa ctl forget KEY` (move_now).
enum class move_cause : std::uint8_t { none, down, removed, drain, overload, returned, operator_ };
inline constexpr int move_cause_count = 7;
// "none", "down", "removed", "drain", "overload", "returned" (the reason label of moves)
std::string_view to_string(move_cause c) noexcept;

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

struct ranked_worker {
  std::uint16_t worker = 0;  // index into placement::workers()
  double score = 0;          // rendezvous score (keyed pools; 0 for unkeyed)
  skip why = skip::none;     // why a new key passed it over (keyed pools; none for unkeyed)
};

// The whole decision for one request: taken by the const placement::decide(), carried out by
// placement::place(), printed by placement::explain() — written once. It holds the answer and the
// change to the remembered placement that comes with it.
struct plan {
  enum class store_op : std::uint8_t { keep, insert, update, erase };
  decision answer;
  int pool = -1;
  bool keyed = false;            // an affinity pool and a non-empty key
  std::uint64_t table_hash = 0;  // the key's affinity-table hash (keyed only)
  // The table slot holding table_hash when decided (affinity_table::slot(); npos when absent),
  // so place() refreshes the entry without a second lookup. Valid until the table changes.
  std::size_t table_slot = affinity_table::npos;
  int remembered = -1;  // the worker the key is remembered on; -1 for a new key
  int home = -1;        // a displaced key's home worker (Sticky home); -1 otherwise
  move_cause move = move_cause::none;
  store_op store = store_op::keep;
  std::uint16_t stored_rank = 0;   // the entry's rank field after insert/update
  bool take_move_token = false;    // a gradual move (drain, overload) spends a move token
  bool take_return_token = false;  // a return home spends one of the pool's tokens
  // The bounded-load bound for this request in the units of worker_figures::load; NaN when the
  // pool has no usable capacity.
  double bound = 0;
  // Keyed: the pool's workers in the key's rendezvous order, with the reason a new key passed
  // each over (up to the new-key choice); unkeyed: the members by name. Points into the
  // placement's scratch: valid until its next decide(), place() or reconfigure().
  std::span<const ranked_worker> ranking;
};

// A non-negative duration as unsigned milliseconds (negative counts as 0).
constexpr std::uint64_t ms(std::chrono::milliseconds d) noexcept {
  return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

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

  // The decision for one request, without changing anything (const: explain, tests, and the
  // first half of place()). now_ms below the latest time seen is treated as that time.
  plan decide(int pool, std::string_view key, std::uint64_t now_ms) const noexcept;

  // Hot path: decide(), then apply the plan — remember or move the key, spend tokens, record one
  // request on the chosen worker — and return its answer. Allocation-free on an affinity hit (a
  // new key may grow the table). now_ms must come from a monotonic clock.
  decision place(int pool, std::string_view key, std::uint64_t now_ms) noexcept;

  // decide() as one JSON object (placement_explain.cpp):
  // {"pool":..,"key_hash":"<16 hex>","ranking":[{"worker":..,"server":..,"score":..,"weight":..,
  //  "capacity":..,"load":..,"state":"healthy","skipped":null|"down"|"drain"|"no capacity"|
  //  "stalled"|"hot"|"over bound"|"current"},...],"bound":..,"remembered":"room3"|null,
  //  "home":"room1"|null,"chosen":"room3"|null,"second":"room2"|null,"reason":"new_key"}
  // `home` is set for a key displaced by a down worker (see "Sticky home").
  // load and bound are in requests per second per unit of weight x capacity. "skipped" explains,
  // in ranking order, why the workers before the new-key choice were passed over.
  std::string explain(int pool, std::string_view key, std::uint64_t now_ms) const;

  // What decide() saw of a worker at now_ms: its live state and capacity, and its load in
  // requests per second per unit of weight x capacity (the unit of plan::bound x rate_scale()).
  struct worker_figures {
    worker_state state = worker_state::unknown;
    double weight = 1.0;
    double capacity = 1.0;
    double load = 0;       // in decide()'s internal units; x rate_scale(now) = requests per second
    double peer_load = 0;  // the part of `load` that other agents reported (set_peer_rates)
  };
  worker_figures figures(int worker) const noexcept;
  // Converts decide()'s internal load units (decayed counts) into requests per second at now_ms.
  double rate_scale(std::uint64_t now_ms) const noexcept;

  // Several agents, one bound: `rps[w]` is the request rate (per second) that the other agents
  // send to worker w (index into workers(); shorter = 0 for the rest; negative or not finite
  // = 0). It is added to this agent's own rate wherever load is compared, and decays like it
  // until the next call. O(workers); off the hot path (the shared store, once per report).
  void set_peer_rates(const std::vector<double>& rps, std::uint64_t now_ms) noexcept;
  // This agent's own decayed request rate to worker w, per second, without the peers' part:
  // what it reports to the others.
  double own_rate(int worker, std::uint64_t now_ms) const noexcept;

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

  // Persistence (format in snapshot.hpp); the file I/O is the shell's (agent/persistence.hpp).
  // Ages travel as Unix times, so the caller passes both clocks. snapshot_document() is the cheap
  // copy step (slot order; the writer sorts it oldest first). restore() adds the document's
  // entries whose worker still exists and that have not expired, and returns a status:
  // "restored N keys (M skipped)" or "ignored: written with another hash_key".
  snapshot::document snapshot_document(std::uint64_t now_ms, std::uint64_t unix_now_ms) const;
  std::string restore(const snapshot::document& doc, std::uint64_t now_ms,
                      std::uint64_t unix_now_ms);
  // The largest snapshot file worth reading for this table (max_keys entries, 65534 names).
  std::size_t max_snapshot_bytes() const noexcept;

  // ---- the shared affinity store (README, "Several HAProxy + agent pairs") ----
  // While recording is on, place() appends every claim (a new key remembered) and every move of
  // a remembered key to a bounded list the shell drains after each batch of requests (one
  // branch on the hot path; nothing for a hit). Past max_changes the oldest pending changes are
  // kept and the rest counted in changes_dropped(): the store reconciles them later.
  struct change {
    std::uint64_t table_hash = 0;
    std::uint16_t pool = 0;
    std::uint16_t worker = 0;
    std::uint16_t old_worker = affinity_table::no_worker;  // no_worker for a claim
    move_cause cause = move_cause::none;                   // none for a claim
  };
  static constexpr std::size_t max_changes = 65536;
  // Turning it on reserves the list (max_changes entries), so place() never allocates for it.
  void record_changes(bool on);
  std::span<const change> changes() const noexcept { return changes_; }
  void clear_changes() noexcept { changes_.clear(); }
  std::uint64_t changes_dropped() const noexcept { return changes_dropped_; }
  // `synapse-spoa ctl forget KEY`: moves the key's remembered worker in `pool` now, to the
  // highest-ranked other worker that takes new keys (its home, for a displaced key; the bound is
  // not applied: the operator asked), and not back home later. Returns
  // the new worker, or -1: not a keyed pool, not remembered, or nowhere else to go. Counted as an
  // "operator" move and recorded for the shared store like any move.
  int move_now(int pool, std::string_view key, std::uint64_t now_ms);
  // Another agent's placement (a lost claim, a pushed move, a restore): remember `table_hash` on
  // `worker` (inserted with an unknown rank, or moved), unless the worker is not a member of
  // `pool`. Returns true when the table changed. Counts as no move of this agent's own.
  bool adopt(int pool, std::uint64_t table_hash, int worker, std::uint64_t now_ms);
  // The table hash of a key in a pool, the store's identity for it (the same on every agent that
  // shares hash_key and pool name). 0 for an unknown pool.
  std::uint64_t table_hash_of(int pool, std::string_view key) const noexcept;
  // The pool index of a name, -1 when unknown; a worker's index by name, -1 when unknown.
  int pool_index(std::string_view name) const noexcept;
  int worker_index(std::string_view name) const noexcept;
  int pool_of(int worker) const noexcept {
    return worker >= 0 && static_cast<std::size_t>(worker) < specs_.size()
               ? specs_[static_cast<std::size_t>(worker)].pool
               : -1;
  }

  // The one list of placement counters: the agent's /metrics exports them by walking the enums.
  struct stats {
    std::uint64_t decisions[reason_count];  // indexed by reason
    std::uint64_t moves[move_cause_count];  // indexed by move_cause (none stays 0)
    std::uint64_t evictions_lru, evictions_ttl;
    std::size_t entries;
    std::uint64_t moved(move_cause c) const noexcept { return moves[static_cast<int>(c)]; }
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
    double count = 0;           // decayed request count, scaled by 2^((t - epoch_ms_) / half-life)
    double remote = 0;          // the peers' reported rates in the same scale (set_peer_rates)
    bool source_drain = false;  // drained by the load source (HAProxy's DRAIN), set_load()
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
    bool equal_weights = true;  // every member has the same weight (hit_second() applies)
    // The members by name as an unkeyed plan's ranking (built once: no per-request copy).
    std::vector<ranked_worker> by_name;
  };
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

  void record(const plan& pl) noexcept;
  void build(std::vector<pool_spec> pools, std::vector<worker_spec> workers,
             placement_options opts);
  std::uint64_t advance(std::uint64_t now_ms) noexcept;
  double increment_at(std::uint64_t now_ms) const noexcept;
  // Drained by the config (or set_drain) or by the load source.
  bool drained(std::size_t w) const noexcept { return specs_[w].drain || workers_[w].source_drain; }
  double load_count(std::size_t w) const noexcept { return workers_[w].count + workers_[w].remote; }
  double capacity_of(std::size_t w) const noexcept {
    return workers_[w].weight * workers_[w].capacity;
  }
  bool usable(std::size_t w) const noexcept;
  bool takes_new(std::size_t w, const pool_sums& s) const noexcept;
  pool_sums sums(const pool_rt& p) const noexcept;
  void evaluate_overload(pool_rt& p, std::uint64_t now_ms) noexcept;
  bool overloaded(std::size_t w, std::uint64_t now_ms) const noexcept;
  // Why a remembered key must leave its worker now (none: it stays).
  move_cause must_move(int pool, std::uint16_t worker, std::uint64_t now_ms) const noexcept;
  bool token_available(std::uint64_t now_ms) const noexcept;
  void take_token(std::uint64_t now_ms) noexcept;
  // placement_decide.cpp. Ranks the pool's members for the key into scratch_ (reserved: no
  // allocation), every skip reason none.
  void rank(const pool_rt& p, std::uint64_t key_hash) const noexcept;
  // Over the ranking in scratch_: the first eligible worker under `bound`, skipping `exclude`;
  // records the skip reason of every rank it passed.
  choice select(double bound, int exclude, const pool_sums& s) const noexcept;
  // Over the ranking in scratch_: the first worker other than `exclude` that takes new keys,
  // else the next-ranked one after `exclude`; -1 for a pool of one. Sets *rank when not null.
  int second_choice(int exclude, const pool_sums& s, int* rank = nullptr) const noexcept;
  int rank_in_scratch(int worker) const noexcept;  // -1 when absent
  // The home a displaced entry may return to now (ranking in scratch_), or -1; ignores tokens.
  int return_target(std::uint16_t entry_rank, int current, const pool_sums& s, double bound,
                    std::uint64_t now_ms) const noexcept;
  bool return_token_available(const pool_rt& p, std::uint64_t now_ms) const noexcept;
  void take_return_token(pool_rt& p, std::uint64_t now_ms) noexcept;
  int least_loaded(const pool_rt& p, const pool_sums& s, int exclude) const noexcept;
  // decide() once the key's SipHash is known (0 and ignored when `keyed` is false: an unkeyed
  // pool or an empty key), so place() can hash the key, and start loading its table slot, first.
  // Without `full_ranking` (place()), a plain affinity hit may leave plan::ranking empty.
  plan decide_hashed(int pool, bool keyed, std::uint64_t key_hash, std::uint64_t now_ms,
                     bool full_ranking) const noexcept;
  void decide_keyed(plan& pl, const pool_rt& p, const pool_sums& s, std::uint64_t now_ms,
                    bool full_ranking) const noexcept;
  // second_choice(current) for a pool of equal weights without ranking it: the eligible member
  // other than `current` with the highest score, found by comparing the scores' uniform inputs
  // (score = -weight / ln(u) rises with u). -1 when that is not certain (no eligible member, or
  // the two best inputs closer than log's rounding could keep apart): then rank the pool.
  int hit_second(const pool_rt& p, std::uint64_t key_hash, int current,
                 const pool_sums& s) const noexcept;
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
  mutable std::vector<ranked_worker> scratch_;  // reserved for the largest pool: no allocation
  bool record_ = false;
  std::vector<change> changes_;
  std::uint64_t changes_dropped_ = 0;
  mutable stats stats_{};
};

}  // namespace spoa::routing
