#include "promtext/lexer.hpp"

#include <algorithm>

namespace spoa::promtext::detail {

bool valid_metric_name(std::string_view n) {
  if (n.empty() || !is_name_start(n[0])) return false;
  return std::all_of(n.begin(), n.end(), is_name_char);
}

std::string excerpt(std::string_view s) {
  constexpr std::size_t max = 40;
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (s.size() > max) out += "...";
  return out;
}

namespace {

std::string describe(std::string_view what, std::string_view label) {
  std::string d(what);
  if (!label.empty()) d += " \"" + excerpt(label) + "\"";
  return d;
}

}  // namespace

bool read_quoted(std::string_view s, std::size_t& i, std::string_view& raw, std::string& why,
                 std::string_view what, std::string_view label) {
  std::size_t start = ++i;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      raw = s.substr(start, i - start);
      ++i;
      return true;
    }
    if (c == '\\') {
      if (i + 1 >= s.size()) break;
      char e = s[i + 1];
      if (e != '\\' && e != '"' && e != 'n') {
        why =
            "invalid escape \"\\" + excerpt(s.substr(i + 1, 1)) + "\" in " + describe(what, label);
        return false;
      }
      i += 2;
      continue;
    }
    ++i;
  }
  why = "unterminated " + describe(what, label) + " (expected a closing '\"')";
  return false;
}

}  // namespace spoa::promtext::detail
