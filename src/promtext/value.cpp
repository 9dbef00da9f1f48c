#include "promtext/value.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

#include "promtext/lexer.hpp"
#include "promtext/parser.hpp"

namespace spoa::promtext {

namespace {

bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != lower[i]) return false;
  }
  return true;
}

}  // namespace

bool parse_value(std::string_view token, double& out) {
  if (token.empty()) return false;
  if (iequals(token, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  bool negative = false;
  std::string_view t = token;
  if (t[0] == '+' || t[0] == '-') {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  if (iequals(t, "inf") || iequals(t, "infinity")) {
    out = negative ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    return true;
  }
  // from_chars takes no sign and would accept "nan(...)"/"inf"; only digits or '.' may start.
  if (t.empty() || !(detail::is_digit(t[0]) || t[0] == '.')) return false;
  double v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
  if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) return false;
  out = negative ? -v : v;
  return true;
}

namespace detail {

bool parse_timestamp(std::string_view t, std::int64_t& ms) {
  if (t.empty()) return false;
  std::string_view digits = t[0] == '+' ? t.substr(1) : t;
  if (digits.empty() || digits[0] == '+') return false;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
  if (r.ec == std::errc{} && r.ptr == digits.data() + digits.size()) return true;
  double seconds = 0;
  if (!parse_value(t, seconds) || !std::isfinite(seconds)) return false;
  double v = std::round(seconds * 1000.0);
  if (!(v > -9.2e18 && v < 9.2e18)) return false;
  ms = static_cast<std::int64_t>(v);
  return true;
}

std::string format_value(double v) {
  std::array<char, 32> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), r.ptr);
}

}  // namespace detail

}  // namespace spoa::promtext
