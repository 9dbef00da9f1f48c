#pragma once
// A routing rule as written by a person (embedded default table or YAML `routes:`), before it is
// compiled into the route table's segment matcher.

#include <optional>
#include <string>
#include <string_view>

#include "routing/request.hpp"

namespace spoa::routing {

struct rule_spec {
  std::string name;     // unique, shown by `route` and in error messages
  std::string methods;  // "*" for any, else "GET|HEAD|..."
  std::string pattern;  // segment pattern, e.g. "/_matrix/client/{r0|v3}/rooms/{room}/messages"
  std::string pool;     // target pool name
  key_kind key = key_kind::none;
  std::string if_query_absent;  // non-empty: matches only when this query parameter is absent
                                // (e.g. "since" for an initial-sync pool)
  std::string source;           // where it was written: "default" or "FILE:LINE"; for messages
};

// The one method syntax of a rule: "*", or uppercase tokens (A-Z, '-', '_') joined by '|'. Why not,
// when not: "empty", "empty method token", "bad character ' ' in method 'GET PUT'". Checked by
// the config loader (with the file position) and again by route_table::compile.
std::optional<std::string> method_syntax_error(std::string_view methods);

}  // namespace spoa::routing
