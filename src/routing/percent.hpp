#pragma once
// Percent-decoding of one captured path segment (RFC 3986 §2.1), for routing keys.
//
// Only the captured segment is decoded, never the whole path: an encoded "%2F" inside a room ID is
// part of the ID, not a separator (synapse-routing.md §7). Decoding is total and deterministic:
// "%XX" with upper- or lower-case hex becomes one byte; a malformed escape ("%4", "%zz", a final
// "%") is kept literally, byte for byte, so the same raw segment always yields the same key.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spoa::routing {

// Decodes `in` into out[0..cap). Returns the decoded length, or `npos_decoded` when the result does
// not fit in `cap` bytes (nothing useful is left in `out` then). Never allocates.
inline constexpr std::size_t npos_decoded = static_cast<std::size_t>(-1);
std::size_t percent_decode(std::string_view in, char* out, std::size_t cap) noexcept;

// The first byte `in` decodes to, without decoding the rest; 0 for an empty segment. Used to tell
// a room ID ('!') from an alias ('#'), a user ID ('@') or an event ID ('$') in either encoding.
char decoded_first_char(std::string_view in) noexcept;

}  // namespace spoa::routing
