#pragma once
// SPOP typed data (reference spop.md §4):
//
//   +--------+--------+------------------+
//   | FLAGS:4| TYPE:4 | DATA (per type)  |     type = low nibble, flags = high nibble
//   +--------+--------+------------------+
//
// NULL 00 | BOOL 01 (false) / 11 (true) | INT32..UINT64 0x02..0x05 + varint |
// IPV4 06 + 4 bytes | IPV6 07 + 16 bytes | STRING 08 / BINARY 09 + varint length + bytes.
// Types 10..15 are reserved and rejected.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "spop/varint.hpp"

namespace spoa::spop {

enum class data_type : std::uint8_t {
  null = 0,
  boolean = 1,
  int32 = 2,
  uint32 = 3,
  int64 = 4,
  uint64 = 5,
  ipv4 = 6,
  ipv6 = 7,
  string = 8,
  binary = 9,
};

inline constexpr std::uint8_t data_type_mask = 0x0F;
inline constexpr std::uint8_t data_flag_true = 0x10;

// A decoded value. It is a view: `bytes` points into the frame it was decoded from.
// Integer types set both `u` (the raw varint) and `i` (the same bits read as signed), since
// HAProxy sends every integer sample as INT64 via encode_varint((uint64_t)v).
struct typed_value {
  data_type type = data_type::null;
  bool boolean = false;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  std::string_view bytes;  // STRING/BINARY contents, raw 4/16 address bytes for IPV4/IPV6

  static constexpr typed_value make_null() noexcept { return {}; }
  static constexpr typed_value make_bool(bool b) noexcept {
    return {data_type::boolean, b, 0, 0, {}};
  }
  static constexpr typed_value make_int32(std::int32_t v) noexcept {
    return {data_type::int32, false, v, static_cast<std::uint64_t>(std::int64_t{v}), {}};
  }
  static constexpr typed_value make_uint32(std::uint32_t v) noexcept {
    return {data_type::uint32, false, std::int64_t{v}, v, {}};
  }
  static constexpr typed_value make_int64(std::int64_t v) noexcept {
    return {data_type::int64, false, v, static_cast<std::uint64_t>(v), {}};
  }
  static constexpr typed_value make_uint64(std::uint64_t v) noexcept {
    return {data_type::uint64, false, static_cast<std::int64_t>(v), v, {}};
  }
  // `raw` must hold exactly 4 (IPv4) / 16 (IPv6) bytes in network order.
  static constexpr typed_value make_ipv4(std::string_view raw) noexcept {
    return {data_type::ipv4, false, 0, 0, raw};
  }
  static constexpr typed_value make_ipv6(std::string_view raw) noexcept {
    return {data_type::ipv6, false, 0, 0, raw};
  }
  static constexpr typed_value make_string(std::string_view s) noexcept {
    return {data_type::string, false, 0, 0, s};
  }
  static constexpr typed_value make_binary(std::string_view s) noexcept {
    return {data_type::binary, false, 0, 0, s};
  }

  constexpr bool is_integer() const noexcept {
    return type >= data_type::int32 && type <= data_type::uint64;
  }
};

// Decodes one typed value from [p, end) and advances `p`. Returns false on any malformation
// (reserved type, truncated data, bad varint) — an invalid frame, status 4.
constexpr bool decode_typed(const std::uint8_t*& p, const std::uint8_t* end,
                            typed_value& out) noexcept {
  if (p == end) return false;
  const std::uint8_t tag = *p;
  const std::uint8_t* q = p + 1;
  out = typed_value{};
  out.type = static_cast<data_type>(tag & data_type_mask);
  switch (out.type) {
    case data_type::null:
      break;
    case data_type::boolean:
      out.boolean = (tag & data_flag_true) != 0;
      break;
    case data_type::int32:
    case data_type::uint32:
    case data_type::int64:
    case data_type::uint64: {
      const varint_result r = decode_varint(q, end);
      if (r.size == 0) return false;
      q += r.size;
      out.u = r.value;
      out.i = static_cast<std::int64_t>(r.value);
      break;
    }
    case data_type::ipv4:
    case data_type::ipv6: {
      const std::size_t n = out.type == data_type::ipv4 ? 4 : 16;
      if (static_cast<std::size_t>(end - q) < n) return false;
      out.bytes = std::string_view(reinterpret_cast<const char*>(q), n);
      q += n;
      break;
    }
    case data_type::string:
    case data_type::binary: {
      const varint_result r = decode_varint(q, end);
      if (r.size == 0) return false;
      q += r.size;
      if (r.value > static_cast<std::uint64_t>(end - q)) return false;
      const auto n = static_cast<std::size_t>(r.value);
      out.bytes = std::string_view(reinterpret_cast<const char*>(q), n);
      q += n;
      break;
    }
    default:
      return false;  // 10..15 reserved
  }
  p = q;
  return true;
}

// Exact number of bytes encode_typed appends for `v`.
constexpr std::size_t typed_size(const typed_value& v) noexcept {
  switch (v.type) {
    case data_type::null:
    case data_type::boolean:
      return 1;
    case data_type::int32:
    case data_type::uint32:
    case data_type::int64:
    case data_type::uint64:
      return 1 + varint_size(v.u);
    case data_type::ipv4:
      return 1 + 4;
    case data_type::ipv6:
      return 1 + 16;
    case data_type::string:
    case data_type::binary:
      return 1 + varint_size(v.bytes.size()) + v.bytes.size();
  }
  return 1;
}

// Appends the wire form of `v`. Integers are written from `u`; IPV4/IPV6 write exactly 4/16
// bytes of `bytes` (zero-padded if shorter). An out-of-range `type` is written as NULL.
void encode_typed(std::string& out, const typed_value& v);

}  // namespace spoa::spop
