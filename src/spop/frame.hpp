#pragma once
// SPOP framing (reference spop.md §1–2):
//
//   +------------------+--------+-----------------+----------------+---------------+---------+
//   | LENGTH: u32 BE   | TYPE:1 | FLAGS: u32 BE   | STREAM-ID:var  | FRAME-ID:var  | PAYLOAD |
//   +------------------+--------+-----------------+----------------+---------------+---------+
//   <- not counted -->  <------------------------- LENGTH bytes ---------------------------->
//
// max-frame-size bounds LENGTH (HAProxy compares the 4-byte length itself against it), so a
// reader needs at most max_frame_size + 4 bytes of buffer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/error.hpp"

namespace spoa::spop {

enum class frame_type : std::uint8_t {
  unset = 0,  // continuation fragment (2.x), never accepted here
  haproxy_hello = 1,
  haproxy_disconnect = 2,
  notify = 3,
  agent_hello = 101,
  agent_disconnect = 102,
  ack = 103,
};

inline constexpr std::uint32_t flag_fin = 0x00000001;
inline constexpr std::uint32_t flag_abort = 0x00000002;
inline constexpr std::size_t length_prefix_size = 4;
// The smallest max-frame-size either side may announce.
inline constexpr std::uint32_t min_frame_size = 256;

struct frame_view {
  frame_type type = frame_type::unset;  // may hold a value outside the enumerators (unknown)
  std::uint32_t flags = 0;
  std::uint64_t stream_id = 0;
  std::uint64_t frame_id = 0;
  std::span<const std::uint8_t> payload;  // points into the decoder's input
};

enum class decode_state : std::uint8_t {
  need_more,  // no complete frame yet; nothing consumed
  frame,      // `frame` is valid, `consumed` bytes (prefix included) belong to it
  error,      // `error` says why; the connection must be closed
};

struct frame_result {
  decode_state state = decode_state::need_more;
  status error = status::normal;
  std::size_t consumed = 0;
  frame_view frame;
};

// Decodes the first frame of `in`. Checks, in order: LENGTH == 0 → invalid (4),
// LENGTH > max_frame_size → too_big (3) — both as soon as the 4 length bytes are present, before
// waiting for the body —, then header varints inside LENGTH (→ 4), then FIN (missing → 10).
// Unknown types are returned as frames; skipping them is the caller's decision.
frame_result decode_frame(std::span<const std::uint8_t> in, std::uint32_t max_frame_size) noexcept;

// Frame encoding in place: begin_frame appends the prefix (length patched later), type,
// FIN flags and IDs and returns the frame's start offset; end_frame patches the length.
std::size_t begin_frame(std::string& out, frame_type type, std::uint64_t stream_id,
                        std::uint64_t frame_id, std::uint32_t flags = flag_fin);
void end_frame(std::string& out, std::size_t start) noexcept;

// Appends a complete frame (tests, fake peers, fuzz seeds).
void encode_frame(std::string& out, frame_type type, std::uint32_t flags, std::uint64_t stream_id,
                  std::uint64_t frame_id, std::string_view payload);

inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace spoa::spop
