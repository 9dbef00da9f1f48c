#pragma once
// A minimal leveled logger to stderr: one line per event, `LEVEL message`. The agent never logs
// request secrets: it never receives any (HAProxy sends derived keys only), and it logs no
// request paths or keys above debug level.

#include <string_view>

namespace spoa::agent {

enum class log_level { debug, info, warn, error };

void set_log_level(log_level l) noexcept;
bool parse_log_level(std::string_view s, log_level* out) noexcept;
bool log_enabled(log_level l) noexcept;
void log(log_level l, std::string_view message);

inline void log_info(std::string_view m) {
  log(log_level::info, m);
}
inline void log_warn(std::string_view m) {
  log(log_level::warn, m);
}
inline void log_error(std::string_view m) {
  log(log_level::error, m);
}

}  // namespace spoa::agent
