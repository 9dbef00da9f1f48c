#pragma once
// DISCONNECT frames, both directions (reference spop.md §8): a KV-LIST with "status-code"
// (UINT32) and "message" (STRING), sid = fid = 0, FIN. HAProxy 2.6 rejects a message longer than
// 255 bytes, so we never send one.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/error.hpp"

namespace spoa::spop {

inline constexpr std::size_t max_disconnect_message = 255;

struct disconnect_info {
  std::uint64_t status_code = 0;  // as sent (may be an agent-specific code outside the table)
  bool has_status_code = false;
  std::string_view message;  // view into the payload
};

struct disconnect_result {
  status st = status::normal;  // invalid if the KV-LIST is malformed or a key has a wrong type
  disconnect_info info;
};

// Parses the payload of HAPROXY-DISCONNECT (or AGENT-DISCONNECT: same layout). Both keys are
// optional; unknown keys are skipped; keys are matched exactly.
disconnect_result parse_disconnect(std::span<const std::uint8_t> payload) noexcept;

// Appends AGENT-DISCONNECT(st, message). The message is cut to 255 bytes and further so that the
// frame fits `max_frame_size` (the cut never splits a UTF-8 sequence).
void encode_agent_disconnect(std::string& out, status st, std::string_view message,
                             std::uint32_t max_frame_size);

// Appends HAPROXY-DISCONNECT (tests and fake peers). The message is written as given.
void encode_haproxy_disconnect(std::string& out, std::uint32_t status_code,
                               std::string_view message);

}  // namespace spoa::spop
