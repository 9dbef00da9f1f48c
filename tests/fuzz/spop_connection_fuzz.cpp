// libFuzzer target for the SPOP connection state machine as the Asio shell drives it: a byte
// stream arrives in reads whose boundaries the fuzzer chooses, and the unconsumed tail of each
// read is presented again with the next one (spop_server.cpp's read loop).
//
// Input layout:
//   byte 0            number of reads k (k = byte % 8 + 1)
//   bytes 1..k-1      split points of the stream (each taken modulo the stream length, sorted)
//   rest              the byte stream HAProxy would send
//
// Invariants (trap on violation):
// - on_bytes never consumes more than it was given, and nothing once closing() is true;
// - the read boundaries do not matter: the frames emitted, the bytes consumed, closing() and
//   last_status() equal those of one single read of the whole stream (the state machine is a
//   function of the byte stream, not of how TCP cut it);
// - every frame emitted decodes, fits the frame size in force, is an agent frame (AGENT-HELLO,
//   AGENT-DISCONNECT or ACK), is never zero-length, and every ACK carries >= 1 well-formed action;
// - at most one AGENT-HELLO and at most one AGENT-DISCONNECT, and nothing after the DISCONNECT;
// - closing() once a DISCONNECT was emitted.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "echo_handler.hpp"
#include "spop/connection.hpp"
#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "spop/message.hpp"

namespace {

using namespace spoa::spop;

using handler = spoa::spop::fuzz::echo_handler;

struct run_result {
  std::string out;
  std::size_t consumed = 0;
  bool closing = false;
  status last = status::normal;
  std::uint32_t frame_size = 0;
};

constexpr std::uint32_t ceiling = 4096;

run_result run(std::span<const std::uint8_t> stream, const std::vector<std::size_t>& cuts) {
  handler h;
  connection conn(connection_options{ceiling}, h);
  run_result r;
  std::string pending;  // the shell's buffer: unconsumed tail + the next read
  std::size_t pos = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? cuts[i] : stream.size();
    pending.append(reinterpret_cast<const char*>(stream.data()) + pos, end - pos);
    pos = end;
    const bool was_closing = conn.closing();
    const std::size_t n = conn.on_bytes(as_bytes(pending), r.out);
    if (n > pending.size()) __builtin_trap();
    if (was_closing && n != 0) __builtin_trap();
    pending.erase(0, n);
    r.consumed += n;
  }
  r.closing = conn.closing();
  r.last = conn.last_status();
  r.frame_size = conn.frame_size();
  return r;
}

void check_output(const run_result& r) {
  std::span<const std::uint8_t> rest = as_bytes(r.out);
  int hellos = 0, disconnects = 0;
  while (!rest.empty()) {
    if (disconnects != 0) __builtin_trap();  // nothing after AGENT-DISCONNECT
    // The frame size only shrinks at HELLO, and nothing bigger than the negotiated size is sent
    // after it; before it only a DISCONNECT (bounded by the ceiling) can be sent.
    const frame_result f = decode_frame(rest, ceiling);
    if (f.state != decode_state::frame || f.consumed <= 4) __builtin_trap();
    if (hellos != 0 && f.consumed - 4 > r.frame_size) __builtin_trap();
    switch (f.frame.type) {
      case frame_type::agent_hello:
        if (++hellos > 1) __builtin_trap();
        if (parse_agent_hello(f.frame.payload).st != status::normal) __builtin_trap();
        break;
      case frame_type::agent_disconnect:
        ++disconnects;
        if (parse_disconnect(f.frame.payload).st != status::normal) __builtin_trap();
        break;
      case frame_type::ack: {
        if (hellos == 0) __builtin_trap();  // no ACK before the handshake
        ack_reader ar(f.frame.payload);
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
    rest = rest.subspan(f.consumed);
  }
  if (disconnects != 0 && !r.closing) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t reads = data[0] % 8 + 1;
  if (size < reads) return 0;
  const std::span<const std::uint8_t> stream(data + reads, size - reads);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < reads; ++i)
    cuts.push_back(stream.empty() ? 0 : data[i] * stream.size() / 255);
  std::sort(cuts.begin(), cuts.end());

  const run_result split = run(stream, cuts);
  check_output(split);
  const run_result whole = run(stream, {});
  if (split.out != whole.out || split.consumed != whole.consumed ||
      split.closing != whole.closing || split.last != whole.last ||
      split.frame_size != whole.frame_size) {
    __builtin_trap();
  }
  return 0;
}
