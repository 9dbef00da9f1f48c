#pragma once
// The embedded route table: Synapse's worker endpoint lists (docs/workers.md, Synapse 1.157)
// mapped onto the reference topology's pools (main, client_sync, room, federation_reader, media).
// The full reasoning per group is in default_rules.cpp; `synapse-spoa routes` prints the table.

#include <string_view>
#include <vector>

#include "routing/rule.hpp"

namespace spoa::routing {

// The Synapse release whose docs/workers.md the default table follows; re-check on upgrades
// (synapse/_scripts/generate_workers_map.py prints the current servlet lists).
inline constexpr std::string_view default_rules_synapse_version = "1.157";

// In evaluation order (first match wins); every rule has source "default". The last rule is the
// catch-all "/**" (any method) -> main, so every request matches some rule.
std::vector<rule_spec> default_rules();

}  // namespace spoa::routing
