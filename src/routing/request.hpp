#pragma once
// What the route table and placement see of one HTTP request: views into the SPOP frame that
// carried it, valid for the duration of one decision. Nothing here owns memory.

#include <cstdint>
#include <optional>
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

// The request's raw query: `query`, or what follows '?' in `path` when that is where it came.
std::string_view query_of(const request& r) noexcept;

// The raw value of the first query parameter named `name`: "" for "name" or "name=", nullopt
// when there is none. No decoding, no allocation.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) noexcept;

// A long-poll: Synapse holds /sync and /events open up to `timeout` ms when nothing is new, so
// their response time is not the worker's speed. True when the query's `timeout` is a number
// other than 0.
bool long_poll(const request& r) noexcept;

}  // namespace spoa::routing
