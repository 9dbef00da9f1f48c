#pragma once
// What the route table and placement see of one HTTP request: views into the SPOP frame that
// carried it, valid for the duration of one decision. Nothing here owns memory.

#include <cstdint>
#include <string_view>

namespace spoa::routing {

// Which part of a request identifies the entity whose caches a worker should keep warm.
enum class key_kind : std::uint8_t {
  none,    // no affinity: the pool balances by load alone
  room,    // the room ID captured from the path (percent-decoded)
  user,    // the `user` arg HAProxy computed from the access token (never the token itself)
  origin,  // the `origin` of an X-Matrix Authorization header (federation)
};

std::string_view to_string(key_kind k) noexcept;

struct request {
  std::string_view method;  // "GET", "PUT", ... as HAProxy's `method` sample sends it
  std::string_view path;    // raw, not decoded; may still carry "?query" (it is stripped)
  std::string_view query;   // raw query string without '?', may be empty
  std::string_view user;    // may be empty
  std::string_view origin;  // may be empty
};

}  // namespace spoa::routing
