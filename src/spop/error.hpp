#pragma once
// SPOP status codes (SPOE.txt §3.5, reference spop.md §8) and their std::error_code wiring.
// The same numbers travel in the "status-code" of both DISCONNECT frames, so a decoder error
// maps directly onto the AGENT-DISCONNECT the connection sends.

#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace spoa::spop {

enum class status : std::uint8_t {
  normal = 0,                        // normal (no error occurred)
  io_error = 1,                      // I/O error
  timeout = 2,                       // a timeout occurred
  too_big = 3,                       // frame is too big
  invalid = 4,                       // invalid frame received
  no_version = 5,                    // version value not found
  no_frame_size = 6,                 // max-frame-size value not found
  no_capabilities = 7,               // capabilities value not found
  unsupported_version = 8,           // unsupported version
  bad_frame_size = 9,                // max-frame-size too big or too small
  fragmentation_not_supported = 10,  // payload fragmentation is not supported
  interlaced_frames = 11,            // invalid interlaced frames
  frame_id_not_found = 12,           // frame-id matches no referenced frame
  resource_allocation = 13,          // resource allocation error
  unknown = 99,                      // an unknown error occurred
};

// The table's description of `st` ("unknown status" for a value outside the table).
std::string_view status_message(status st) noexcept;

const std::error_category& spop_category() noexcept;

inline std::error_code make_error_code(status st) noexcept {
  return {static_cast<int>(st), spop_category()};
}

}  // namespace spoa::spop

template <>
struct std::is_error_code_enum<spoa::spop::status> : std::true_type {};
