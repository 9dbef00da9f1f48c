#pragma once
// A bounds-checked cursor over one frame's payload. Every read either succeeds entirely or
// returns false and leaves the cursor unusable; a false return means "invalid frame" (status 4)
// because the payload length is known.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/typed_data.hpp"
#include "spop/varint.hpp"

namespace spoa::spop {

class byte_reader {
 public:
  explicit constexpr byte_reader(std::span<const std::uint8_t> bytes) noexcept
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  constexpr bool empty() const noexcept { return p_ == end_; }
  constexpr std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }

  constexpr bool read_u8(std::uint8_t& v) noexcept {
    if (p_ == end_) return false;
    v = *p_++;
    return true;
  }

  constexpr bool read_varint(std::uint64_t& v) noexcept {
    const varint_result r = decode_varint(p_, end_);
    if (r.size == 0) return false;
    v = r.value;
    p_ += r.size;
    return true;
  }

  // A name: varint length + bytes, no type byte (spoe_encode_buffer()).
  constexpr bool read_name(std::string_view& s) noexcept {
    std::uint64_t n = 0;
    if (!read_varint(n) || n > remaining()) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }

  constexpr bool read_typed(typed_value& v) noexcept { return decode_typed(p_, end_, v); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

inline void append_name(std::string& out, std::string_view name) {
  append_varint(out, name.size());
  out.append(name);
}

constexpr std::size_t name_size(std::string_view name) noexcept {
  return varint_size(name.size()) + name.size();
}

}  // namespace spoa::spop
