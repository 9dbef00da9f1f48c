#include "agent/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace spoa::agent {
namespace {
log_level g_level = log_level::info;

const char* name(log_level l) {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "info";
}
}  // namespace

void set_log_level(log_level l) noexcept {
  g_level = l;
}

bool parse_log_level(std::string_view s, log_level* out) noexcept {
  for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    if (s == name(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

bool log_enabled(log_level l) noexcept {
  return l >= g_level;
}

void log(log_level l, std::string_view message) {
  if (!log_enabled(l)) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(message.size() + 48);
  line += stamp;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ ", static_cast<int>(ms));
  line += frac;
  line += name(l);
  line += ' ';
  line += message;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace spoa::agent
