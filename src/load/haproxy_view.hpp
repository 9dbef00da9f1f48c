#pragma once
// HAProxy's own view of each worker, read from its Prometheus exporter (the `stats` frontend of
// haproxy/haproxy.cfg serves it on /metrics): the operator's runtime state (the runtime API's
// `set server BACKEND/SERVER state drain|maint|ready`, the stats page) and HAProxy's health
// checks. One series per state, the current one at 1 (HAProxy 2.6 and 3.2 alike):
//
//   haproxy_server_status{proxy="synapse_room",server="room1",state="UP"} 1
//   haproxy_server_status{proxy="synapse_room",server="room1",state="DRAIN"} 0   ... MAINT, DOWN,
//   NOLB
//
// What the agent makes of it (load/model.hpp): MAINT = down (HAProxy sends the server nothing,
// so its rooms move at once), DRAIN = drained (no new rooms, remembered ones move gradually, as a
// config drain; so is NOLB, HAProxy's "stopping"), DOWN (its health check failed) = down, UP = no
// opinion (the agent's own scrapes decide). Pure: no I/O.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spoa::load {

enum class haproxy_state : std::uint8_t { unknown, up, down, drain, maint };
// "unknown", "UP", "DOWN", "DRAIN", "MAINT"
std::string_view to_string(haproxy_state s) noexcept;

// Where a worker lives in HAProxy: its pool's backend and its server name (empty: not served by
// HAProxy, e.g. a federation sender).
struct haproxy_server_ref {
  std::string backend;
  std::string server;
};

struct haproxy_parse {
  bool ok = false;
  std::string error;                  // "line N: ..." or "no haproxy_server_status series"
  std::vector<haproxy_state> states;  // by ref index; unknown where the body has no series
};

// Untrusted input: a malformed body is an error (nothing is applied); series of other backends
// or servers are ignored; at most one state per server wins, by precedence MAINT > DRAIN > DOWN
// > UP (NOLB counts as DRAIN).
haproxy_parse parse_haproxy_servers(std::string_view body,
                                    const std::vector<haproxy_server_ref>& refs);

}  // namespace spoa::load
