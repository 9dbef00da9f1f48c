#include "cli/offline.hpp"

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <variant>

#include "config/load.hpp"
#include "decision/router.hpp"

namespace spoa::cli {
namespace {

std::unique_ptr<decision::router> make_router(const config::agent_config& cfg) {
  try {
    return std::make_unique<decision::router>(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(exit_config);
  }
}

}  // namespace

config::agent_config load_config(const std::optional<std::string>& path) {
  if (!path) return config::default_config();
  auto loaded = config::load_file(*path);
  if (auto* err = std::get_if<config::load_error>(&loaded)) {
    std::fprintf(stderr, "%s\n", err->message.c_str());
    std::exit(exit_config);
  }
  return std::get<config::agent_config>(std::move(loaded));
}

int check_config(const config::agent_config& cfg) {
  make_router(cfg);
  std::printf("%s: ok (%zu pools, %zu workers)\n", cfg.source.c_str(), cfg.pools.size(),
              cfg.workers.size());
  return 0;
}

int route(const config::agent_config& cfg, const route_request& rr, std::string* usage) {
  auto r = make_router(cfg);
  if (rr.live) r->set_load(rr.live);
  // Offline: a deterministic clock, one millisecond per request, so replays are reproducible.
  std::uint64_t clock_ms = 1;
  if (rr.positional.size() == 1 && rr.positional[0] == "-") {
    if (!rr.args.empty()) {
      *usage = "route -: --arg applies to single requests only";
      return 2;
    }
    std::string line;
    std::size_t n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const auto sp = line.find(' ');
      if (line.size() > 65536 || sp == std::string::npos || sp == 0 || sp + 1 >= line.size()) {
        std::printf("{\"line\":%zu,\"error\":\"expected METHOD PATH\"}\n", n);
        continue;
      }
      std::string_view method(line.data(), sp);
      std::string_view path(line.data() + sp + 1, line.size() - sp - 1);
      if (const auto sp2 = path.find(' '); sp2 != std::string_view::npos)
        path = path.substr(0, sp2);
      routing::request req{method, path, {}, {}, {}};
      std::fputs(r->explain(req, clock_ms++).c_str(), stdout);
      std::fputc('\n', stdout);
    }
    return 0;
  }
  if (rr.positional.size() != 2) {
    *usage = "route wants METHOD PATH, or - to read stdin";
    return 2;
  }
  routing::request req{rr.positional[0], rr.positional[1], {}, {}, {}};
  for (const auto& [k, v] : rr.args) {
    if (k == "query") {
      req.query = v;
    } else if (k == "user") {
      req.user = v;
    } else if (k == "origin") {
      req.origin = v;
    } else if (k != "method" && k != "path" && k != "src") {
      *usage = "route: unknown --arg '" + k + "' (query, user, origin)";
      return 2;
    }
  }
  std::printf("%s\n", r->explain(req, clock_ms).c_str());
  return 0;
}

int routes(const config::agent_config& cfg) {
  auto r = make_router(cfg);
  std::fputs(r->table().to_markdown().c_str(), stdout);
  return 0;
}

int print_default_config() {
  const auto y = config::default_yaml();
  std::fwrite(y.data(), 1, y.size(), stdout);
  return 0;
}

int version() {
  const auto v = config::version();
  std::printf("synapse-spoa %.*s\n", static_cast<int>(v.size()), v.data());
  return 0;
}

}  // namespace spoa::cli
