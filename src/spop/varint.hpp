#pragma once
// SPOP variable-length integers: the "peers" encoding of HAProxy's include/haproxy/intops.h
// (encode_varint / decode_varint), reference spop.md §3.
//
//        0 <= X < 240          1 byte   [XXXX XXXX]
//      240 <= X < 2288         2 bytes  [1111 XXXX] [0XXX XXXX]
//     2288 <= X < 264432       3 bytes  [1111 XXXX] [1XXX XXXX] [0XXX XXXX]
//   ... a full uint64 takes 10 bytes.
//
// The decoder ADDS each shifted byte, continuation bit included (the encoder's "- 240" and
// "- 128" compensate); an OR-based decoder gives wrong values. Unlike HAProxy's, ours stops after
// 10 bytes, never reads past `end`, and rejects sums that overflow uint64.

#include <cstddef>
#include <cstdint>
#include <string>

namespace spoa::spop {

inline constexpr std::size_t max_varint_size = 10;

constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  if (v < 240) return 1;
  std::size_t n = 2;
  v = (v - 240) >> 4;
  while (v >= 128) {
    ++n;
    v = (v - 128) >> 7;
  }
  return n;
}

// Writes the encoding of `v` to `p` (which has room for max_varint_size bytes); returns the
// number of bytes written.
constexpr std::size_t encode_varint(std::uint64_t v, std::uint8_t* p) noexcept {
  if (v < 240) {
    p[0] = static_cast<std::uint8_t>(v);
    return 1;
  }
  std::size_t n = 0;
  p[n++] = static_cast<std::uint8_t>(v | 240);
  v = (v - 240) >> 4;
  while (v >= 128) {
    p[n++] = static_cast<std::uint8_t>(v | 128);
    v = (v - 128) >> 7;
  }
  p[n++] = static_cast<std::uint8_t>(v);
  return n;
}

inline void append_varint(std::string& out, std::uint64_t v) {
  if (v < 240) {
    out.push_back(static_cast<char>(v));
    return;
  }
  std::uint8_t buf[max_varint_size];
  const std::size_t n = encode_varint(v, buf);
  out.append(reinterpret_cast<const char*>(buf), n);
}

enum class varint_error : std::uint8_t {
  none,
  truncated,  // the bytes ran out before the final byte (< 128)
  too_long,   // no final byte within max_varint_size bytes
  overflow,   // the sum does not fit in uint64
};

struct varint_result {
  std::uint64_t value = 0;
  std::uint8_t size = 0;  // bytes consumed; 0 on error
  varint_error error = varint_error::none;
};

// Decodes one varint from [p, end). Inside a frame every error is an invalid frame (status 4):
// the frame length is already known, so running out of bytes is not "need more".
constexpr varint_result decode_varint(const std::uint8_t* p, const std::uint8_t* end) noexcept {
  if (p == end) return {0, 0, varint_error::truncated};
  std::uint64_t v = p[0];
  if (v < 240) return {v, 1, varint_error::none};
  unsigned shift = 4;
  for (std::size_t i = 1; i < max_varint_size; ++i) {
    if (p + i == end) return {0, 0, varint_error::truncated};
    const std::uint64_t b = p[i];
    // b < 256, so b << shift loses bits only once shift > 56 (the 10th byte, shift 60).
    if (shift > 56 && (b >> (64 - shift)) != 0) return {0, 0, varint_error::overflow};
    if (__builtin_add_overflow(v, b << shift, &v)) return {0, 0, varint_error::overflow};
    if (b < 128) return {v, static_cast<std::uint8_t>(i + 1), varint_error::none};
    shift += 7;
  }
  return {0, 0, varint_error::too_long};
}

}  // namespace spoa::spop
