#pragma once
// The decision for one request: route table (which pool, which key) then placement (which
// worker). Pure: no I/O, no clock of its own. Used on the SPOP hot path by the agent and
// offline by `synapse-spoa route`.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "routing/load_view.hpp"
#include "routing/placement.hpp"
#include "routing/request.hpp"
#include "routing/route_table.hpp"

namespace spoa::agent {

struct answer {
  std::string_view pool;     // pool name
  std::string_view backend;  // HAProxy backend
  std::string_view server;   // HAProxy server inside it (empty if the pool has no worker)
  std::string_view worker;   // worker name
  // The second choice (placement.hpp): HAProxy's use-server rule after `server`, taken when it
  // has marked `server` DOWN. Empty when the pool has no other worker.
  std::string_view server2;
  std::uint64_t key_hash = 0;
  std::string_view key;  // the affinity key (decoded room ID, user, origin) or empty
  routing::key_kind kind = routing::key_kind::none;
  int rule = -1;  // index into route_table::rules()
  int pool_index = -1;
  int worker_index = -1;  // index into config workers, -1 if none
  routing::reason why = routing::reason::fallback;
};

class router {
 public:
  // Throws std::runtime_error with an exact message when the routes do not compile (unknown
  // pool, malformed pattern, shadowed rule). Config time only.
  explicit router(const config::agent_config& cfg);

  // Reload: recompile the routes (throws, changing nothing, if they do not compile) and
  // reconfigure placement, keeping remembered keys with workers of the same name.
  void reconfigure(const config::agent_config& cfg);

  // Hot path. `key_buf` holds the decoded key the answer's `key` may point into.
  answer decide(const routing::request& req, routing::key_buffer& key_buf, std::uint64_t now_ms);

  // `route` explanation: one JSON object (no newline) with pool, backend, server, key, rule and
  // the placement ranking as it stood before this request; then the decision is taken (and
  // remembered), so a replayed batch carries affinity from line to line.
  std::string explain(const routing::request& req, std::uint64_t now_ms);

  // Live load, indexed by config worker (all workers, scraped or not); now_ms dates returns
  // from down (placement's sticky home), 0 = placement's latest time.
  void set_load(const routing::load_view& by_config_worker, std::uint64_t now_ms = 0);

  const routing::route_table& table() const noexcept { return table_; }
  routing::placement& placement() noexcept { return placement_; }
  const routing::placement& placement_view() const noexcept { return placement_; }
  const config::agent_config& config() const noexcept { return cfg_; }
  // config worker index -> placement worker index (-1: worker serves no pool)
  const std::vector<int>& placement_index() const noexcept { return to_placement_; }

 private:
  config::agent_config cfg_;
  routing::route_table table_;
  routing::placement placement_;
  std::vector<int> to_placement_;    // config worker -> placement worker
  std::vector<int> from_placement_;  // placement worker -> config worker
};

// Builds the effective rule list and compiles it against the config's pools; the error message
// (if any) is exact and names the rules involved. Shared by the router and `check-config`.
std::string compile_routes(const config::agent_config& cfg, routing::route_table* out);

std::string json_escape(std::string_view s);

}  // namespace spoa::agent
