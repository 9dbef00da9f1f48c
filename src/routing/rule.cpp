#include "routing/rule.hpp"

namespace spoa::routing {

std::optional<std::string> method_syntax_error(std::string_view text) {
  if (text == "*") return std::nullopt;
  if (text.empty()) return std::string("empty");
  std::size_t begin = 0;
  while (true) {
    const std::size_t bar = text.find('|', begin);
    const std::string_view token =
        text.substr(begin, bar == std::string_view::npos ? std::string_view::npos : bar - begin);
    if (token.empty()) return std::string("empty method token");
    for (char c : token) {
      // HTTP methods are case-sensitive (RFC 9110 §9.1) and every Matrix method is uppercase: a
      // lowercase token could never match what HAProxy sends.
      const bool ok = (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
      if (!ok)
        return "bad character '" + std::string(1, c) + "' in method '" + std::string(token) + "'";
    }
    if (bar == std::string_view::npos) break;
    begin = bar + 1;
  }
  return std::nullopt;
}

}  // namespace spoa::routing
