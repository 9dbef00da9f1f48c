#include "config/duration.hpp"

#include <array>
#include <cstdint>

namespace spoa::config {

namespace {

struct unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Largest first, so format_duration emits "1h30m" rather than "90m".
constexpr std::array<unit, 5> units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const std::int64_t limit = max_duration.count();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::int64_t n = 0;
    const std::size_t digits_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n = n * 10 + (s[i] - '0');
      if (n > limit) return std::nullopt;  // also keeps n * unit below 2^63
      ++i;
    }
    if (i == digits_start) return std::nullopt;
    // "ms" must be tried before "m".
    std::int64_t unit_ms = 0;
    if (s.substr(i, 2) == "ms") {
      unit_ms = 1;
      i += 2;
    } else if (i < s.size()) {
      switch (s[i]) {
        case 'd':
          unit_ms = 86'400'000;
          break;
        case 'h':
          unit_ms = 3'600'000;
          break;
        case 'm':
          unit_ms = 60'000;
          break;
        case 's':
          unit_ms = 1'000;
          break;
        default:
          return std::nullopt;
      }
      ++i;
    } else {
      return std::nullopt;  // a number without a unit
    }
    if (n > (limit - total) / unit_ms) return std::nullopt;
    total += n * unit_ms;
  }
  return std::chrono::milliseconds{total};
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t left = d.count();
  if (left <= 0) return left == 0 ? "0ms" : std::to_string(left) + "ms";
  std::string out;
  for (const unit& u : units) {
    if (left >= u.ms) {
      out += std::to_string(left / u.ms);
      out += u.suffix;
      left %= u.ms;
    }
  }
  return out;
}

}  // namespace spoa::config
