#pragma once
// The one JSON writer of the project: explain output (`synapse-spoa route`, placement::explain)
// and anything else that prints JSON. Appends to a caller's string; strings are escaped per
// RFC 8259 §7 (quote, backslash, and every control character below 0x20), other bytes are copied
// as they are (paths and keys are bytes, not validated UTF-8).

#include <cstdint>
#include <string>
#include <string_view>

namespace spoa::routing::json {

// `s` escaped, without quotes.
void append_escaped(std::string& out, std::string_view s);
std::string escape(std::string_view s);
// "s" (escaped, quoted).
void append_string(std::string& out, std::string_view s);
// %.6g, or null for NaN and infinities (JSON has no such numbers).
void append_number(std::string& out, double v);

}  // namespace spoa::routing::json

namespace spoa::routing {

// A 64-bit hash as 16 lower-case hex digits, most significant first (key_hash in ACKs, logs and
// explain output).
std::string_view to_hex(std::uint64_t v, char (&out)[16]) noexcept;

}  // namespace spoa::routing
