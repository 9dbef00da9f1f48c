#pragma once
// The CLI's offline commands, over the pure decision library only. Each returns the process exit
// code; usage errors are the caller's (main.cpp parses the command line).

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "routing/load_view.hpp"

namespace spoa::cli {

inline constexpr int exit_config = 2;

// --config FILE or the embedded default; on error prints the exact message and exits 2.
config::agent_config load_config(const std::optional<std::string>& path);

// check-config: the file and its routes (the router compiles them); exit 0 or 2.
int check_config(const config::agent_config& cfg);

struct route_request {
  std::vector<std::string> positional;                    // METHOD PATH, or "-" for stdin
  std::vector<std::pair<std::string, std::string>> args;  // --arg NAME=VALUE (query, user, origin)
  // `--live`: the shell's scraped view (by worker); null = offline, every worker healthy.
  std::shared_ptr<const routing::load_view> live;
};
// route: one JSON line per request. Returns 0, or 2 with *usage set for a usage error.
int route(const config::agent_config& cfg, const route_request& r, std::string* usage);

// routes: the effective route table as Markdown.
int routes(const config::agent_config& cfg);

int print_default_config();
int version();

}  // namespace spoa::cli
