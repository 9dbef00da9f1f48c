#pragma once
// Durations as written in the config: an unsigned integer followed by a unit, optionally several
// of them combined, e.g. "250ms", "2s", "5m", "1h", "1d", "1h30m".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace spoa::config {

// Parses a duration. Units: ms, s, m, h, d. No sign, no fraction, no spaces, at least one part,
// a unit on every part. Returns nullopt on any syntax error or if the total exceeds
// max_duration (so the result always fits in any later arithmetic on milliseconds).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

// The largest duration parse_duration accepts: 365 days.
inline constexpr std::chrono::milliseconds max_duration{365LL * 24 * 3600 * 1000};

// The shortest form that parse_duration reads back to the same value: "0ms", "250ms", "2s",
// "1h30m", "1d". For messages and for printing an effective configuration.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace spoa::config
