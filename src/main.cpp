// synapse-spoa: the command line. See ARCHITECTURE.md §4 (CLI). The offline commands are
// src/cli (pure decision library only); `run` and `route --live` need the agent shell.

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
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
#include "agent/scraper.hpp"
#include "cli/offline.hpp"

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
  synapse-spoa ctl [--socket PATH | --config FILE] COMMAND
      Talk to a running agent over its control socket (control.socket of the config):
      status | drain WORKER | undrain WORKER | forget KEY | explain METHOD PATH.
      Prints the agent's JSON answer; exit 0 when it says "ok":true, 1 otherwise.
)";

constexpr int k_exit_usage = 2;

struct args {
  std::string command = "run";
  std::optional<std::string> config;
  std::optional<std::string> listen;
  std::optional<std::string> metrics_listen;
  std::string ready_file;
  std::optional<std::string> socket;
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
    } else if (s == "--socket") {
      a.socket = value("--socket");
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

int cmd_route(const args& a) {
  const auto cfg = spoa::cli::load_config(a.config);
  spoa::cli::route_request r;
  r.positional = a.positional;
  r.args = a.route_args;
  if (a.live) {
    std::vector<std::string> lines;
    r.live = spoa::agent::scrape_live(cfg, &lines);
    for (const auto& l : lines)
      std::fprintf(stderr, "load: %s\n", l.c_str());
  }
  std::string usage;
  const int rc = spoa::cli::route(cfg, r, &usage);
  if (!usage.empty()) usage_error(usage);
  return rc;
}

// One request line to the agent's control socket, its answer to stdout.
int cmd_ctl(const args& a) {
  if (a.positional.empty()) usage_error("ctl needs a command");
  std::string path;
  if (a.socket) {
    path = *a.socket;
  } else {
    path = spoa::cli::load_config(a.config).control.socket;
    if (path.empty())
      usage_error(
          "ctl: no control socket: give --socket PATH, or --config FILE with control.socket");
  }
  std::string line;
  for (const auto& p : a.positional) {
    if (p.find_first_of("\r\n") != std::string::npos)
      usage_error("ctl: arguments cannot hold a newline");
    line += (line.empty() ? "" : " ") + p;
  }
  line += "\n";
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) usage_error("ctl: socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "synapse-spoa ctl: cannot connect to %s: %s\n", path.c_str(),
                 std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return 1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  bool ok = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
  char buf[65536];
  while (ok) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) ok = false;
    if (n <= 0 || reply.size() > (16u << 20)) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!ok) {
    std::fprintf(stderr, "synapse-spoa ctl: %s: %s\n", path.c_str(),
                 errno == EAGAIN ? "no answer within 10 s" : std::strerror(errno));
    return 1;
  }
  std::fputs(reply.c_str(), stdout);
  return reply.rfind("{\"ok\":true", 0) == 0 ? 0 : 1;
}

int cmd_run(const args& a) {
  if (!a.positional.empty()) usage_error("run takes no arguments");
  spoa::agent::run_options o;
  o.config = spoa::cli::load_config(a.config);
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
  if (a.command == "check-config") {
    if (!a.positional.empty()) usage_error("check-config takes no arguments");
    return spoa::cli::check_config(spoa::cli::load_config(a.config));
  }
  if (a.command == "print-default-config") return spoa::cli::print_default_config();
  if (a.command == "route") return cmd_route(a);
  if (a.command == "routes") return spoa::cli::routes(spoa::cli::load_config(a.config));
  if (a.command == "version") return spoa::cli::version();
  if (a.command == "ctl") return cmd_ctl(a);
  usage_error("unknown command '" + a.command + "'");
}
