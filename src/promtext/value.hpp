#pragma once
// Numbers on a sample line: the value (parse_value, public in parser.hpp), the optional timestamp,
// and the shortest round-trip text of a double for error messages.

#include <cstdint>
#include <string>
#include <string_view>

namespace spoa::promtext::detail {

// Integer int64 milliseconds (0.0.4), else OpenMetrics seconds, possibly fractional, converted to
// milliseconds; false when neither or out of int64 range.
bool parse_timestamp(std::string_view t, std::int64_t& ms);

std::string format_value(double v);

}  // namespace spoa::promtext::detail
