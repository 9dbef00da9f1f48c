#include "routing/json.hpp"

#include <cmath>
#include <cstdio>

namespace spoa::routing::json {

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_escaped(out, s);
  return out;
}

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_escaped(out, s);
  out.push_back('"');
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  out.append(buf);
}

}  // namespace spoa::routing::json

namespace spoa::routing {

std::string_view to_hex(std::uint64_t v, char (&out)[16]) noexcept {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i)
    out[i] = hex[(v >> (60 - 4 * i)) & 0xF];
  return {out, 16};
}

}  // namespace spoa::routing
