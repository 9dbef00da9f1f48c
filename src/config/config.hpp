#pragma once
// The agent's configuration as plain structs. Each component's section is that component's own
// options struct, which carries its defaults (routing::placement_options, load::options,
// spop::listener_options); the embedded default document (default_config.yaml, printed by
// `synapse-spoa print-default-config`) documents every key for the reference topology.
//
// Loading (YAML -> these structs, with validation and exact error messages) lives in load.hpp;
// the accepted range of every value is documented in default_config.yaml.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "load/feedback.hpp"
#include "load/model.hpp"
#include "routing/placement.hpp"
#include "routing/rule.hpp"
#include "spop/options.hpp"

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

// `placement:` is the placement component's own options struct (defaults in
// routing/placement.hpp) plus the shell's persistence settings.
struct placement : routing::placement_options {
  std::string snapshot;  // msgpack snapshot path; empty = no persistence
  std::chrono::milliseconds snapshot_interval{60'000};

  bool operator==(const placement&) const = default;
};

// `load:` is the load component's options struct (defaults in load/model.hpp): scraping and the
// load model.
using load = ::spoa::load::options;

// `spop:` is the listener's own options struct (defaults in spop/options.hpp).
using spop = ::spoa::spop::listener_options;

// `shared:` the shared affinity store (README "Several HAProxy + agent pairs"). Off while `redis`
// is empty. The password is read at startup from password_file or the environment variable
// password_env (never from the config itself, so the file can be world-readable) and is never
// logged, echoed in an error or exported.
struct shared {
  std::string redis;                         // "redis://HOST:PORT[/DB]"; empty = off
  std::string key_prefix = "synapse-spoa:";  // every key and the channel start with it
  std::string user;                          // ACL user for AUTH; empty = the default user
  std::string password_file;                 // file whose first line is the password
  std::string password_env;                  // or: environment variable holding it
  std::chrono::milliseconds connect_timeout{1'000};
  std::chrono::milliseconds command_timeout{500};      // a slower reply counts Redis as down
  std::chrono::milliseconds refresh_interval{60'000};  // batched TTL refresh of hit keys
  std::chrono::milliseconds reconnect_interval{1'000};
  // Every load_interval each agent publishes its request rate per worker; bounded load compares
  // the sum over the agents heard from within 3 x load_interval.
  std::chrono::milliseconds load_interval{1'000};

  bool operator==(const shared&) const = default;
};

// `control:`: the runtime control socket of `synapse-spoa ctl` (agent/control.hpp).
struct control {
  std::string socket;    // Unix socket path; empty = no runtime control
  unsigned mode = 0660;  // its file mode: who may connect (with its directory's permissions)

  bool operator==(const control&) const = default;
};

// `responses:`: what the agent learns from HAProxy's sampled `response` messages
// (load/feedback.hpp; the latency thresholds themselves are in `load:`).
using responses = ::spoa::load::feedback_options;

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
  ::spoa::config::load load;
  ::spoa::config::spop spop;
  struct shared shared;
  struct control control;
  ::spoa::config::responses responses;
  std::string log_level = "info";
  // "text": TIMESTAMP LEVEL MESSAGE; "json": one object per line with the event's fields
  // (agent/log.hpp).
  std::string log_format = "text";
};

}  // namespace spoa::config
