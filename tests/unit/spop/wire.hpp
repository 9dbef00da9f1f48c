#pragma once
// Test helper: builds wire bytes from a readable spec, e.g.
//   wire(R"(00 00 00 0f 67 00 00 00 01 01 01 02 02 02 04 "noop")")
// Hex pairs (spaces ignored) and "quoted" literal text.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace spoa::spop::test {

inline std::string wire(std::string_view spec) {
  std::string out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t k = 0; k < spec.size();) {
    const char c = spec[k];
    if (c == '"') {
      const std::size_t close = spec.find('"', k + 1);
      if (close == std::string_view::npos) {  // unterminated: the rest is text
        out.append(spec.substr(k + 1));
        break;
      }
      out.append(spec.substr(k + 1, close - k - 1));
      k = close + 1;
    } else if (nibble(c) >= 0 && k + 1 < spec.size() && nibble(spec[k + 1]) >= 0) {
      out.push_back(static_cast<char>(nibble(c) * 16 + nibble(spec[k + 1])));
      k += 2;
    } else {
      ++k;
    }
  }
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

inline std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace spoa::spop::test
