#pragma once
// The shared affinity store: several HAProxy + agent pairs keep one placement through Redis
// (README, "Several HAProxy + agent pairs"; ARCHITECTURE §7).
//
//   hit          local only: no Redis operation on the request path (placement records nothing)
//   new key      placement records a claim; within a tick (10 ms) the store sends
//                SET key worker NX PX ttl GET: nil = this agent won; another worker = it lost,
//                and adopts the winner (the first requests went to its own choice meanwhile)
//   move         placement records the move; the store runs a compare-and-set script
//                (old -> new, or set when the key is missing) that PUBLISHes the move on
//                <prefix>moves; every other agent adopts it. A CAS that finds a third worker
//                adopts that one instead (another agent moved first)
//   refresh      every refresh_interval (x 0.8-1.2, jittered per agent), PEXPIRE for the keys
//                used since the last one (affinity_table::for_each_used_since: no per-hit
//                work), sent while fewer than 2000 replies are owed (as is the reconcile); a
//                key Redis no longer has (expired, or Redis restarted empty) is claimed again.
//                Keys live affinity_ttl + refresh_interval in Redis: a key that any agent still
//                holds (used within affinity_ttl) is refreshed before Redis lets it go, so Redis
//                never hands a room that is alive somewhere to a fresh claim
//   load         every load_interval, "l1" on the channel: this agent's own request rate per
//                worker (placement::own_rate). The others' reports heard within
//                3 x load_interval are summed into placement::set_peer_rates, so bounded load
//                compares the sum over agents; while down, or alone, the bound is local
//   restore      once after start, the first connection SCANs <prefix>a:* (1000 keys a tick,
//                MGET) and adopts every key of a known pool and worker: an agent restarted
//                without a snapshot (or with an old one) routes every room as the others do from
//                its first request; the snapshot is the fallback while Redis is unreachable
//   (re)connect  the whole local table is claimed again (SET NX GET, 2000 keys per tick) and
//                winners adopted: Redis restarted empty gets the agents' tables back, an agent
//                that was cut off (or restarted from its snapshot) takes the others' moves
//
// Faults: a connect or reply slower than its timeout, an error reply to AUTH/SELECT, or a lost
// connection closes both connections and marks the store down (logged once, exported as
// synapse_spoa_shared_connected 0); placement goes on locally, changes made while down are
// dropped (the reconcile on reconnect covers them), and reconnects are tried every
// reconnect_interval. Nothing waits for Redis on the request path.
//
// Untrusted input: a reply or message that is not the expected type or shape, names an unknown
// worker, or a worker of another pool is counted (invalid_total) and ignored.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/asio.hpp"
#include "agent/counter.hpp"
#include "agent/redis_link.hpp"
#include "config/config.hpp"
#include "config/endpoint.hpp"
#include "routing/shared_wire.hpp"

namespace spoa::decision {
class router;
}

namespace spoa::agent {

// Written on the event loop, read by the metrics exposer thread.
struct shared_counters {
  using counter = agent::counter;
  std::atomic<bool> enabled{false}, connected{false};
  counter connects{0}, disconnects{0};
  counter claims{0}, claims_won{0}, conflicts_adopted{0};
  counter moves_pushed{0}, moves_received{0}, moves_adopted{0}, cas_conflicts{0};
  counter refreshes{0}, reclaims{0}, reconciled{0}, dropped{0}, invalid{0}, errors{0};
  counter load_reports{0}, load_reports_received{0}, restored{0}, scans{0};
  std::atomic<int> peers{0};  // other agents whose load report is current
  // The peers' summed request rate per worker, as last given to placement (exposer reads it).
  struct peer_rate {
    std::string pool, worker;
    double rps = 0;
  };
  mutable std::mutex peer_mu;
  std::vector<peer_rate> peer_rates;  // guarded by peer_mu
  static constexpr std::array<double, 11> latency_buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1};
  latency_histogram<latency_buckets.size()> latency;
};

class shared_store {
 public:
  // `password` has been read by the caller (password_file / password_env); it is kept in memory
  // for AUTH only. `agent_id` names this agent on the channel (its own messages are skipped).
  shared_store(asio::io_context& io, config::shared cfg, std::string password, std::string agent_id,
               decision::router& router, std::uint64_t ttl_ms);
  ~shared_store();
  void start();
  void stop();
  // Reload: the placement's indices may have changed; pending changes are gone (placement
  // clears them) and the whole table is reconciled.
  void reconfigured(std::uint64_t ttl_ms);
  std::shared_ptr<const shared_counters> counters() const { return counters_; }

 private:
  enum class phase { down, connecting, up };
  void schedule_reconnect();
  void connect();
  void on_resolved(const tcp::resolver::results_type& results);
  void maybe_up();
  void teardown(const std::string& why);  // posted: never inside a hiredis callback
  void tick();
  void flush_changes();
  void claim(int pool, std::uint64_t table_hash, int worker, bool reconcile);
  void push_move(int pool, std::uint64_t table_hash, int old_worker, int worker);
  void refresh();
  void refresh_step();
  void reconcile_step();
  void publish_load(std::uint64_t now);
  void apply_peers(std::uint64_t now);
  void on_load(std::string_view payload, std::uint64_t now);
  void forget_peers();
  void remap_peers();    // after a reload: the peers' rates to the new worker indices
  void index_workers();  // worker_ix_, peer_workers_ from placement
  void restore_step();
  void on_scan(const redisReply* r);
  void retry_restore();  // an error reply to SCAN or MGET: the same cursor again in a second
  void on_message(const redisReply* r);
  void adopt_reply(int pool, std::uint64_t table_hash, int mine, std::string_view winner,
                   shared_counters::counter& count);
  bool send(const std::vector<std::string_view>& argv, redis_link::reply_fn fn);
  std::string key_of(int pool, std::uint64_t table_hash) const;
  std::uint64_t jittered(std::chrono::milliseconds interval);

  asio::io_context& io_;
  config::shared cfg_;
  config::redis_url url_;
  std::string password_;
  std::string agent_id_;
  std::string channel_;
  decision::router& router_;
  std::uint64_t ttl_ms_;
  std::string ttl_text_;
  std::shared_ptr<shared_counters> counters_ = std::make_shared<shared_counters>();
  std::shared_ptr<redis_link> cmd_, sub_;
  tcp::resolver resolver_;
  asio::steady_timer reconnect_timer_, connect_timer_, tick_timer_;
  phase phase_ = phase::down;
  bool cmd_ready_ = false, sub_ready_ = false;
  bool stopped_ = false;
  bool down_logged_ = false;
  std::uint64_t last_refresh_ms_ = 0, refresh_due_ms_ = 0;
  struct pending_key {
    std::uint64_t table_hash;
    std::uint16_t worker;
  };
  std::vector<pending_key> reconcile_;  // the table's keys still to claim after a (re)connect
  std::size_t reconcile_at_ = 0;
  std::vector<pending_key> refresh_;  // keys used since the last refresh, still to PEXPIRE
  std::size_t refresh_at_ = 0;
  std::uint64_t load_due_ms_ = 0;
  std::minstd_rand rng_;                // refresh jitter, seeded from the agent id
  bool restored_ = false;               // the start-up restore from Redis has completed
  bool scanning_ = false;               // a SCAN (or its MGET) is in flight
  std::uint64_t restore_retry_ms_ = 0;  // after an error reply (-LOADING): not before
  std::string scan_cursor_ = "0";
  struct peer {
    std::vector<double> rps;  // by worker index (placement's index space)
    std::uint64_t heard_ms = 0;
  };
  std::unordered_map<std::string, peer> peers_;     // by agent id; at most max_peers
  std::vector<std::string> peer_workers_;           // the worker names peer::rps is indexed by
  std::unordered_map<std::string, int> worker_ix_;  // worker name -> index (load reports)
  std::vector<routing::shared_wire::load_entry> load_scratch_;  // parse_load's bounded output
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // reply callbacks check it
};

}  // namespace spoa::agent
