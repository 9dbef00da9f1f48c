#include "routing/percent.hpp"

namespace spoa::routing {

namespace {

// -1 for a byte that is not a hex digit.
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte an escape at in[i] (in[i] == '%') stands for, or -1 when it is malformed.
constexpr int escape_at(std::string_view in, std::size_t i) noexcept {
  if (i + 2 >= in.size()) return -1;
  const int hi = hex_value(in[i + 1]);
  const int lo = hex_value(in[i + 2]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

}  // namespace

std::size_t percent_decode(std::string_view in, char* out, std::size_t cap) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < in.size();) {
    char c = in[i];
    std::size_t used = 1;
    if (c == '%') {
      const int v = escape_at(in, i);
      if (v >= 0) {
        c = static_cast<char>(static_cast<unsigned char>(v));
        used = 3;
      }
    }
    if (n == cap) return npos_decoded;
    out[n++] = c;
    i += used;
  }
  return n;
}

char decoded_first_char(std::string_view in) noexcept {
  if (in.empty()) return 0;
  if (in[0] == '%') {
    const int v = escape_at(in, 0);
    if (v >= 0) return static_cast<char>(static_cast<unsigned char>(v));
  }
  return in[0];
}

}  // namespace spoa::routing
