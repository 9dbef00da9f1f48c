// synapse-spoa: the command line. See ARCHITECTURE.md §4 (CLI).

#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agent/agent.hpp"
#include "agent/router.hpp"
#include "agent/scraper.hpp"
#include "config/load.hpp"

namespace {

constexpr const char* k_usage = R"(usage:
  synapse-spoa [run] [--config FILE] [--listen ADDR:PORT] [--metrics-listen ADDR:PORT]
                     [--ready-file FILE] [--noop]
      Run the agent. Without --config: the embedded default (reference topology, loopback).
  synapse-spoa check-config [--config FILE]
      Validate a config (and its routes); exit 0, or exit 2 with the exact problem.
  synapse-spoa print-default-config
      Print the embedded default config (YAML, commented).
  synapse-spoa route [--config FILE] [--live] [--arg NAME=VALUE]... METHOD PATH
      Explain one routing decision as one JSON line. Offline every worker is healthy at
      nominal capacity; --live first scrapes every worker's metrics (about two scrape
      intervals) and shows each worker's load view and state on stderr.
      NAME is one of query, user, origin.
  synapse-spoa route [--config FILE] -
      Read "METHOD PATH" lines from stdin, one JSON line per request, in order; affinity is
      carried through the batch (replay an access log).
  synapse-spoa routes [--config FILE]
      Print the effective route table as Markdown.
)";

constexpr int k_exit_usage = 2;
constexpr int k_exit_config = 2;

struct args {
  std::string command = "run";
  std::optional<std::string> config;
  std::optional<std::string> listen;
  std::optional<std::string> metrics_listen;
  std::string ready_file;
  bool noop = false;
  bool live = false;
  std::vector<std::pair<std::string, std::string>> route_args;
  std::vector<std::string> positional;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "synapse-spoa: %s\n%s", msg.c_str(), k_usage);
  std::exit(k_exit_usage);
}

args parse_args(int argc, char** argv) {
  args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') a.command = argv[i++];
  auto value = [&](const char* flag) -> std::string {
    if (i + 1 >= argc) usage_error(std::string(flag) + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string_view s = argv[i];
    if (s == "--config") {
      a.config = value("--config");
    } else if (s == "--listen") {
      a.listen = value("--listen");
    } else if (s == "--metrics-listen") {
      a.metrics_listen = value("--metrics-listen");
    } else if (s == "--ready-file") {
      a.ready_file = value("--ready-file");
    } else if (s == "--live") {
      a.live = true;
    } else if (s == "--noop") {
      a.noop = true;
    } else if (s == "--arg") {
      const std::string kv = value("--arg");
      const auto eq = kv.find('=');
      if (eq == std::string::npos) usage_error("--arg wants NAME=VALUE, got '" + kv + "'");
      a.route_args.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (s == "-h" || s == "--help") {
      std::fputs(k_usage, stdout);
      std::exit(0);
    } else if (s == "-") {
      a.positional.emplace_back(s);
    } else if (!s.empty() && s[0] == '-') {
      usage_error("unknown option '" + std::string(s) + "'");
    } else {
      a.positional.emplace_back(s);
    }
  }
  return a;
}

// Loads --config or the embedded default; on error prints the exact message and exits 2.
spoa::config::agent_config load_config(const std::optional<std::string>& path) {
  if (!path) return spoa::config::default_config();
  auto loaded = spoa::config::load_file(*path);
  if (auto* err = std::get_if<spoa::config::load_error>(&loaded)) {
    std::fprintf(stderr, "%s\n", err->message.c_str());
    std::exit(k_exit_config);
  }
  return std::get<spoa::config::agent_config>(std::move(loaded));
}

std::unique_ptr<spoa::agent::router> make_router(const spoa::config::agent_config& cfg) {
  try {
    return std::make_unique<spoa::agent::router>(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(k_exit_config);
  }
}

int cmd_check_config(const args& a) {
  if (!a.positional.empty()) usage_error("check-config takes no arguments");
  const auto cfg = load_config(a.config);
  make_router(cfg);
  std::printf("%s: ok (%zu pools, %zu workers)\n", cfg.source.c_str(), cfg.pools.size(),
              cfg.workers.size());
  return 0;
}

int cmd_route(const args& a) {
  const auto cfg = load_config(a.config);
  auto r = make_router(cfg);
  if (a.live) {
    std::vector<std::string> lines;
    const auto view = spoa::agent::scrape_live(cfg, &lines);
    r->set_load(*view);
    for (const auto& l : lines)
      std::fprintf(stderr, "load: %s\n", l.c_str());
  }
  // Offline: a deterministic clock, one millisecond per request, so replays are reproducible.
  std::uint64_t clock_ms = 1;
  if (a.positional.size() == 1 && a.positional[0] == "-") {
    if (!a.route_args.empty()) usage_error("route -: --arg applies to single requests only");
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
      spoa::routing::request req{method, path, {}, {}, {}};
      std::fputs(r->explain(req, clock_ms++).c_str(), stdout);
      std::fputc('\n', stdout);
    }
    return 0;
  }
  if (a.positional.size() != 2) usage_error("route wants METHOD PATH, or - to read stdin");
  spoa::routing::request req{a.positional[0], a.positional[1], {}, {}, {}};
  for (const auto& [k, v] : a.route_args) {
    if (k == "query") {
      req.query = v;
    } else if (k == "user") {
      req.user = v;
    } else if (k == "origin") {
      req.origin = v;
    } else if (k != "method" && k != "path" && k != "src") {
      usage_error("route: unknown --arg '" + k + "' (query, user, origin)");
    }
  }
  std::printf("%s\n", r->explain(req, clock_ms).c_str());
  return 0;
}

int cmd_routes(const args& a) {
  const auto cfg = load_config(a.config);
  auto r = make_router(cfg);
  std::fputs(r->table().to_markdown().c_str(), stdout);
  return 0;
}

int cmd_run(const args& a) {
  if (!a.positional.empty()) usage_error("run takes no arguments");
  spoa::agent::run_options o;
  o.config = load_config(a.config);
  if (a.config) o.config_path = *a.config;
  o.listen = a.listen;
  o.metrics_listen = a.metrics_listen;
  o.ready_file = a.ready_file;
  o.noop = a.noop;
  try {
    return spoa::agent::run(std::move(o));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "synapse-spoa: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const args a = parse_args(argc, argv);
  if (a.command == "run") return cmd_run(a);
  if (a.command == "check-config") return cmd_check_config(a);
  if (a.command == "print-default-config") {
    const auto y = spoa::config::default_yaml();
    std::fwrite(y.data(), 1, y.size(), stdout);
    return 0;
  }
  if (a.command == "route") return cmd_route(a);
  if (a.command == "routes") return cmd_routes(a);
  if (a.command == "version") {
    std::printf("synapse-spoa 0.1.0\n");
    return 0;
  }
  usage_error("unknown command '" + a.command + "'");
}
