#pragma once
// Shared helpers for the route table tests: the reference topology's pools, the compiled default
// table, and a one-call classifier returning owned values for EXPECT_EQ.

#include <string>
#include <string_view>
#include <vector>

#include "routing/route_table.hpp"

namespace spoa::routing::test {

// The user and origin every corpus request carries, so user/origin keys are checkable.
inline constexpr std::string_view corpus_user = "YWxpY2U";
inline constexpr std::string_view corpus_origin = "other.org";

std::vector<std::string> reference_pools();

// The embedded default table compiled over reference_pools(); aborts the test binary if it does
// not compile (a broken default table makes every other test meaningless).
const route_table& default_table();

struct outcome {
  std::string pool;  // "" when no rule matched
  std::string key;
  std::string rule;  // rule name
  key_kind kind = key_kind::none;
};

outcome classify(const route_table& t, std::string_view method, std::string_view path,
                 std::string_view user = corpus_user, std::string_view origin = corpus_origin,
                 std::string_view query = {});

rule_spec make_rule(std::string name, std::string methods, std::string pattern, std::string pool,
                    key_kind key = key_kind::none, std::string source = "test.yaml:1");

}  // namespace spoa::routing::test
