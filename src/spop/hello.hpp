#pragma once
// The HELLO handshake (reference spop.md §7). HAProxy opens every connection with HAPROXY-HELLO;
// we answer AGENT-HELLO with version "2.0", the negotiated max-frame-size and "pipelining" only:
// never "async" (per-thread matching on 2.6, gone on 3.1) nor "fragmentation" (never accepted).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/error.hpp"

namespace spoa::spop {

// What HAProxy announced. Views point into the frame payload.
struct haproxy_hello {
  std::string_view supported_versions;
  std::uint32_t max_frame_size = 0;  // saturated to uint32 if HAProxy sent more
  std::string_view capabilities;
  std::string_view engine_id;
  bool healthcheck = false;
};

struct hello_result {
  status st = status::normal;  // normal = the HELLO is acceptable
  haproxy_hello hello;
};

// Parses a HAPROXY-HELLO KV-LIST. Keys are matched exactly (HAProxy itself matches by prefix, but
// it never sends look-alike keys); unknown keys are skipped. Errors, checked in this order:
// malformed list or a known key with the wrong type → invalid (4); no supported-versions → 5;
// no "2.0" in the list → 8; no max-frame-size → 6; max-frame-size < 256 → 9.
hello_result parse_haproxy_hello(std::span<const std::uint8_t> payload) noexcept;

// True if the comma-separated "Major.Minor" list (spaces ignored) contains 2.0.
bool supports_version_2_0(std::string_view versions) noexcept;

// The frame size both sides will use: min(HAProxy's, our ceiling).
constexpr std::uint32_t negotiate_frame_size(std::uint32_t haproxy,
                                             std::uint32_t ceiling) noexcept {
  return haproxy < ceiling ? haproxy : ceiling;
}

inline constexpr std::string_view agent_version = "2.0";
inline constexpr std::string_view agent_capabilities = "pipelining";

// Appends AGENT-HELLO (type 101, sid = fid = 0, FIN): version, max-frame-size (UINT32),
// capabilities. 64 bytes for 16380, so it always fits the smallest legal frame size.
void encode_agent_hello(std::string& out, std::uint32_t max_frame_size);

// --- the other direction, for tests, fake HAProxy peers and fuzz seeds ---

// Appends HAPROXY-HELLO with supported-versions, max-frame-size, capabilities, then engine-id
// if non-empty and healthcheck if true.
void encode_haproxy_hello(std::string& out, const haproxy_hello& hello);

struct agent_hello {
  std::string_view version;
  std::uint64_t max_frame_size = 0;
  std::string_view capabilities;
};
struct agent_hello_result {
  status st = status::normal;
  agent_hello hello;
};
// Parses AGENT-HELLO as HAProxy would (missing version → 5, missing max-frame-size → 6).
agent_hello_result parse_agent_hello(std::span<const std::uint8_t> payload) noexcept;

}  // namespace spoa::spop
