#pragma once
// The agent's configuration as plain structs. Every default here is the documented default; the
// embedded default document (default_config.yaml, printed by `synapse-spoa print-default-config`)
// restates them for the reference topology on loopback ports.
//
// Loading (YAML -> these structs, with validation and exact error messages) lives in load.hpp;
// the accepted range of every value is documented in default_config.yaml.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "routing/rule.hpp"

namespace spoa::config {

enum class balance_mode : std::uint8_t {
  affinity,      // keyed: rendezvous + bounded load + remembered placement
  least_loaded,  // unkeyed: the least loaded healthy worker of the pool
};

// One HAProxy backend: a pool of Synapse workers that may serve the same requests.
struct pool {
  std::string name;     // e.g. "room"; referenced by rules and workers
  std::string backend;  // HAProxy backend name, e.g. "synapse_room"
  balance_mode balance = balance_mode::least_loaded;
  routing::key_kind key = routing::key_kind::none;  // default key for rules targeting this pool

  bool operator==(const pool&) const = default;
};

// One Synapse process.
struct worker {
  std::string name;     // unique, e.g. "room1"
  std::string pool;     // empty for workers with no inbound HTTP (background, federation_sender)
  std::string server;   // HAProxy server name inside the pool's backend; defaults to name
  double weight = 1.0;  // relative capacity, > 0
  std::string metrics;  // "http://HOST:PORT/PATH" scraped for live load; empty = not scraped
  bool drain = false;   // take no new keys, move remembered keys away gradually

  bool operator==(const worker&) const = default;
};

struct placement {
  double balance_factor = 1.25;               // bounded load: new keys go to workers under
                                              // balance_factor x pool average (>= 1.0)
  double overload_factor = 2.0;               // remembered keys move off a worker above this
                                              // x pool average for `overload_after`
  std::chrono::milliseconds overload_after{10'000};
  std::chrono::milliseconds affinity_ttl{3'600'000};  // idle time before a key is forgotten
  std::size_t max_keys = 1'000'000;           // LRU cap on remembered keys
  double max_moves_per_second = 50.0;         // rate limit on moving remembered keys
  std::string hash_key;                       // secret for the keyed hash; same on every agent
  std::string snapshot;                       // msgpack snapshot path; empty = no persistence
  std::chrono::milliseconds snapshot_interval{60'000};
  std::chrono::milliseconds load_half_life{10'000};  // decay of the agent's own request rates
  // Sticky home: a key moved off a worker because it was down goes back to it once the worker
  // has been up (not down, not stalled) for `return_after`, at most return_per_second keys per
  // second per pool (0 = keys never return).
  std::chrono::milliseconds return_after{30'000};
  double return_per_second = 2.0;

  bool operator==(const placement&) const = default;
};

struct load {
  // 1 s / 750 ms: a stopped worker's first timed-out scrape ends at most 1.1 x 1 s (jitter) +
  // 750 ms = 1.85 s after it stopped, inside the 2 s "no new keys" target (default_config.yaml).
  std::chrono::milliseconds scrape_interval{1'000};
  std::chrono::milliseconds scrape_timeout{750};
  std::size_t max_body_bytes = 4 * 1024 * 1024;  // larger bodies are a failed scrape
  double ewma_alpha = 0.3;                       // weight of the newest scrape
  double hot_cpu = 0.85;                         // CPU utilisation (cores) that makes a worker hot
  double cool_cpu = 0.70;                        // ... and below which it is healthy again
  double hot_reactor_lag = 0.050;                // mean reactor tick seconds (YAML: a duration)
  double cool_reactor_lag = 0.020;
  int down_after_failures = 3;                   // consecutive failed scrapes -> down
  std::chrono::milliseconds stale_after{10'000};  // no fresh data: decay toward neutral
  std::chrono::milliseconds stall_down_after{3'000};     // stalled this long without life: down
  std::chrono::milliseconds reactor_stall_after{10'000};  // reactor_last_seen at or above: stalled

  bool operator==(const load&) const = default;
};

struct spop {
  std::uint32_t max_frame_size = 16380;       // ceiling; HAProxy's own value is answered if lower
  std::chrono::milliseconds idle_timeout{180'000};
  std::chrono::milliseconds hello_timeout{5'000};
  std::size_t max_connections = 1024;
  std::size_t max_pipelined = 256;            // frames decoded but not yet answered per connection
  std::vector<std::string> allow_from;        // empty = any source address

  bool operator==(const spop&) const = default;
};

struct agent_config {
  std::string source = "<embedded default>";  // file name, for messages
  std::string listen = "127.0.0.1:12345";
  std::string metrics_listen = "127.0.0.1:9464";
  std::vector<pool> pools;
  std::vector<worker> workers;
  // `routes:` in YAML. Rules listed here are tried before the embedded Synapse table (so they
  // win); `retarget` sends an embedded rule, by name, to another pool; `replace_defaults: true`
  // makes the listed rules the whole table.
  std::vector<routing::rule_spec> routes;
  std::vector<std::pair<std::string, std::string>> route_retarget;  // rule name -> pool
  bool routes_replace_defaults = false;
  struct placement placement;
  struct load load;
  struct spop spop;
  std::string log_level = "info";
};

}  // namespace spoa::config
