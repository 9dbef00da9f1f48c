#pragma once
// The decision for one request: the route table (which pool, which key), then placement (which
// worker). Pure — no I/O and no clock of its own: the caller passes "now". Used on the SPOP hot
// path by the agent (through handler.hpp) and offline by `synapse-spoa route`.
//
// One index space for workers: worker i is config.workers[i] everywhere — in placement (a worker
// without a pool is simply in no pool), in the load view, in answers and in the agent's metrics.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "routing/load_view.hpp"
#include "routing/placement.hpp"
#include "routing/request.hpp"
#include "routing/route_table.hpp"

namespace spoa::decision {

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

// The effective route table for a config: the embedded Synapse rules with the operator's
// overrides (routes:, retarget, replace_defaults), compiled against the config's pools. An
// embedded rule for a pool the deployment does not have goes to `main`, the one process that can
// serve every endpoint; rules the operator wrote are never retargeted. Throws std::runtime_error
// with an exact message (unknown pool, malformed pattern, shadowed rule). Config time only.
routing::route_table compile_routes(const config::agent_config& cfg);

class router {
 public:
  // Throws like compile_routes(), or std::invalid_argument from placement.
  explicit router(const config::agent_config& cfg);

  // Reload: recompile the routes (throws, changing nothing, if they do not compile) and
  // reconfigure placement, keeping remembered keys, load estimates and state by worker name.
  void reconfigure(const config::agent_config& cfg);

  // Hot path. `key_buf` holds the decoded key the answer's `key` may point into.
  answer decide(const routing::request& req, routing::key_buffer& key_buf, std::uint64_t now_ms);

  // `route` explanation (explain.cpp): one JSON object (no newline) with pool, backend, server,
  // key, rule and the placement ranking as it stood before this request; then the decision is
  // taken (and remembered), so a replayed batch carries affinity from line to line.
  std::string explain(const routing::request& req, std::uint64_t now_ms);

  // Live load, indexed by worker (= config worker); now_ms dates returns from down (placement's
  // sticky home), 0 = placement's latest time.
  void set_load(std::shared_ptr<const routing::load_view> view, std::uint64_t now_ms = 0);
  void set_load(const routing::load_view& view, std::uint64_t now_ms = 0) {
    set_load(std::make_shared<const routing::load_view>(view), now_ms);
  }

  const routing::route_table& table() const noexcept { return table_; }
  routing::placement& placement() noexcept { return placement_; }
  const routing::placement& placement() const noexcept { return placement_; }
  const config::agent_config& config() const noexcept { return cfg_; }

 private:
  config::agent_config cfg_;
  routing::route_table table_;
  routing::placement placement_;
};

}  // namespace spoa::decision
