#pragma once
// The agent process: one event-loop thread running the SPOP listener, the metrics scraper,
// the agent's own /metrics endpoint, snapshot persistence and signal handling.

#include <optional>
#include <string>

#include "config/config.hpp"

namespace spoa::agent {

struct run_options {
  config::agent_config config;
  std::string config_path;                    // empty = embedded default; SIGHUP re-reads this file
  std::optional<std::string> listen;          // --listen override
  std::optional<std::string> metrics_listen;  // --metrics-listen override
  std::string ready_file;  // written (atomically) once listening: "spop PORT\nmetrics PORT\n"
  bool noop = false;       // benchmark mode: ACK every message with a fixed route
};

// Runs until SIGTERM/SIGINT; returns the process exit code. Throws std::runtime_error with an
// exact message on startup errors (bad listen address, routes that do not compile).
int run(run_options opts);

}  // namespace spoa::agent
