// libFuzzer target for the SPOP decoders and connection state machine.
//
// Input layout: byte 0 picks the split point of the rest (so partial reads are exercised), the
// rest is the byte stream HAProxy would send. Invariants checked (trap on violation):
// - on_bytes never consumes more than it was given;
// - every frame the agent emits decodes, fits the negotiated max-frame-size, is one of the
//   agent's types, and is never zero-length;
// - every ACK carries at least one action, all of them well-formed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "echo_handler.hpp"
#include "spop/connection.hpp"
#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "spop/message.hpp"

namespace {

using namespace spoa::spop;

using handler = spoa::spop::fuzz::echo_handler;

void check_output(const std::string& out, std::uint32_t frame_size) {
  std::span<const std::uint8_t> rest = as_bytes(out);
  while (!rest.empty()) {
    const frame_result r = decode_frame(rest, frame_size);
    if (r.state != decode_state::frame) __builtin_trap();
    switch (r.frame.type) {
      case frame_type::agent_hello:
        if (parse_agent_hello(r.frame.payload).st != status::normal) __builtin_trap();
        break;
      case frame_type::agent_disconnect:
        if (parse_disconnect(r.frame.payload).st != status::normal) __builtin_trap();
        break;
      case frame_type::ack: {
        ack_reader ar(r.frame.payload);
        action a;
        std::size_t n = 0;
        while (ar.next(a))
          ++n;
        if (ar.error() != status::normal || n == 0) __builtin_trap();
        break;
      }
      default:
        __builtin_trap();
    }
    rest = rest.subspan(r.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> stream(data + 1, size - 1);
  const std::size_t split = stream.empty() ? 0 : data[0] % (stream.size() + 1);

  // The stateless decoders on their own.
  {
    const frame_result r = decode_frame(stream, 16380);
    if (r.state == decode_state::frame) {
      (void)parse_haproxy_hello(r.frame.payload);
      (void)parse_disconnect(r.frame.payload);
      (void)validate_notify(r.frame.payload);
    }
  }

  // The state machine, fed in two reads like the Asio shell does.
  handler h;
  connection conn(connection_options{4096}, h);
  std::string pending(reinterpret_cast<const char*>(stream.data()), split);
  std::string out;
  std::size_t n = conn.on_bytes(as_bytes(pending), out);
  if (n > pending.size()) __builtin_trap();
  pending.erase(0, n);
  pending.append(reinterpret_cast<const char*>(stream.data()) + split, stream.size() - split);
  n = conn.on_bytes(as_bytes(pending), out);
  if (n > pending.size()) __builtin_trap();
  // The size changes only at HELLO and the agent writes nothing bigger before it (AGENT-HELLO
  // is 64 bytes, a pre-HELLO DISCONNECT uses the ceiling, which is then still in force), so the
  // final frame_size() bounds every frame.
  check_output(out, conn.frame_size());
  return 0;
}
