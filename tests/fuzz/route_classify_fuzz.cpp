// libFuzzer target for the route classifier: the embedded Synapse table is compiled once, and the
// input is classified as a raw path under each method, with and without a query.
//
// Input layout: byte 0 picks the method (and whether the path's '?' part or a separate query is
// used), the rest is split at the first 0x00 into path and query (the query also doubles as the
// user / origin args, which key user / origin rules return unchanged).
//
// Invariants (trap on violation):
// - every request matches some rule (the table ends with the catch-all "/**" -> main);
// - pool and rule indices are in range, and the rule's pool is the classification's pool;
// - a room key is non-empty only for kind room, lies inside the key_buffer, and starts with '!';
// - a user / origin key is exactly the request's user / origin arg;
// - classification is a pure function: classifying again gives the same answer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "routing/default_rules.hpp"
#include "routing/route_table.hpp"

namespace {

using namespace spoa::routing;

const route_table& table() {
  static const route_table t = [] {
    auto c = route_table::compile(default_rules(),
                                  {"main", "client_sync", "room", "federation_reader", "media"});
    if (!std::holds_alternative<route_table>(c)) std::abort();
    return std::get<route_table>(std::move(c));
  }();
  return t;
}

constexpr std::string_view methods[] = {"GET",  "PUT",     "POST", "DELETE",
                                        "HEAD", "OPTIONS", "get",  ""};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const route_table& t = table();
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t nul = all.find('\0');
  request req;
  req.method = methods[data[0] % 8];
  req.path = all.substr(0, nul);
  if (nul != std::string_view::npos) {
    const std::string_view extra = all.substr(nul + 1);
    if (data[0] & 0x08) req.query = extra;
    if (data[0] & 0x10) req.user = extra;
    if (data[0] & 0x20) req.origin = extra;
  }

  key_buffer buf;
  const classification c = t.classify(req, buf);
  if (c.rule < 0 || static_cast<std::size_t>(c.rule) >= t.rules().size()) __builtin_trap();
  if (c.pool < 0 || static_cast<std::size_t>(c.pool) >= t.pool_names().size()) __builtin_trap();
  if (t.pool_names()[static_cast<std::size_t>(c.pool)] !=
      t.rules()[static_cast<std::size_t>(c.rule)].pool)
    __builtin_trap();
  switch (c.kind) {
    case key_kind::none:
      if (!c.key.empty()) __builtin_trap();
      break;
    case key_kind::room:
      if (!c.key.empty()) {
        if (c.key.data() < buf.data || c.key.data() + c.key.size() > buf.data + sizeof buf.data)
          __builtin_trap();
        if (c.key.front() != '!') __builtin_trap();
      }
      break;
    case key_kind::user:
      if (c.key != req.user) __builtin_trap();
      break;
    case key_kind::origin:
      if (c.key != req.origin) __builtin_trap();
      break;
  }

  key_buffer buf2;
  const classification again = t.classify(req, buf2);
  if (again.rule != c.rule || again.pool != c.pool || again.kind != c.kind || again.key != c.key)
    __builtin_trap();
  return 0;
}
