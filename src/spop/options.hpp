#pragma once
// The SPOP listener's options, with their documented defaults: the config file's `spop:` section
// is this struct (config/config.hpp embeds it), and the agent's listener takes it as it is.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "spop/connection.hpp"

namespace spoa::spop {

struct listener_options : connection_options {  // max_frame_size: ceiling, HAProxy's if lower
  std::chrono::milliseconds idle_timeout{180'000};
  std::chrono::milliseconds hello_timeout{5'000};
  std::size_t max_connections = 1024;
  std::size_t max_pipelined = 256;      // frames decoded but not yet answered per connection
  std::vector<std::string> allow_from;  // addresses or CIDR blocks; empty = any source address

  bool operator==(const listener_options&) const = default;
};

}  // namespace spoa::spop
