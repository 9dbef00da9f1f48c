#pragma once
// What placement knows of each worker's live load: published by the load model (src/load) as an
// immutable snapshot and swapped into placement by pointer. Placement never reads metrics itself.

#include <cstdint>
#include <string_view>
#include <vector>

namespace spoa::routing {

enum class worker_state : std::uint8_t {
  unknown,  // no (fresh) data: treated as healthy; `capacity` still applies (stale data
            // decays toward 1 rather than jumping there)
  healthy,
  hot,   // saturated: takes no new keys while another worker of its pool has headroom
  down,  // unreachable or failing: takes nothing, its remembered keys move
  // Answers nothing in time (metrics scrapes time out, or its reactor has not run for a while):
  // takes no new keys at all, its remembered keys stay until it is down or answers again.
  // Last so that the numeric values of the others (exported, persisted nowhere) stay put.
  stalled,
};
inline constexpr int worker_state_count = 5;

// "unknown", "healthy", "hot", "down", "stalled"
std::string_view to_string(worker_state s) noexcept;

struct worker_load {
  worker_state state = worker_state::unknown;
  // Live multiplier on the worker's configured weight: 1 = nominal, < 1 = busier than its
  // weight suggests, 0 = take nothing new. Stale data decays toward 1 (neutral).
  double capacity = 1.0;
  // Drained by the load source (HAProxy's DRAIN): as a config drain, no new keys and remembered
  // ones move gradually; lifted when the source says so.
  bool drain = false;
};

struct load_view {
  std::vector<worker_load> workers;  // index = worker index in the config; may be shorter
};

}  // namespace spoa::routing
