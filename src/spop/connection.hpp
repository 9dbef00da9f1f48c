#pragma once
// The SPOP connection state machine, sans-I/O: bytes in, bytes to send out, and a closing flag.
// The Asio shell only reads, calls on_bytes(), writes `out` in one write, and closes when
// closing() says so.
//
//   wait_hello --HAPROXY-HELLO ok--> processing --HAPROXY-DISCONNECT / error / disconnect()-->
//   closing
//        |                                                                                 ^
//        +--HELLO refused, healthcheck answered, any other frame, framing error ------------+
//
// Decisions where the spec leaves room (reference spop.md; SPOE.txt §3.2.3):
// - A NOTIFY (or UNSET) before HELLO is an invalid frame: AGENT-DISCONNECT status 4. HAProxy
//   never sends one, so the peer is not speaking SPOP as we know it.
// - HAPROXY-DISCONNECT is honoured in every state: reply AGENT-DISCONNECT 0 and close.
//   A malformed one is answered with status 4 instead.
// - HELLO and DISCONNECT must carry sid = fid = 0, else invalid (4). A second HELLO is invalid.
// - NOTIFY IDs are echoed as they are, including sid 0 (HAProxy 2.6's uniq_id counter starts at
//   0).
// - UNSET (type 0) frames are fragments: status 10, as is any frame without FIN.
// - Frames of the agent's own types (101–103) sent to us are invalid (4); other unknown types
//   are skipped, as SPOE.txt allows.
// - A NOTIFY is validated completely before the handler sees any of its messages, so the
//   handler never acts on a frame that then turns out to be invalid.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/error.hpp"
#include "spop/message.hpp"

namespace spoa::spop {

struct frame_view;

class notify_handler {
 public:
  virtual ~notify_handler() = default;
  // Once per message of a NOTIFY, in order; append this message's actions to `ack`.
  virtual void on_message(const message_view& msg, ack_builder& ack) = 0;
};

struct connection_options {
  // Our ceiling for max-frame-size: bounds frames before HELLO and caps the negotiated size.
  // Values below 256 (the protocol minimum) are raised to 256.
  std::uint32_t max_frame_size = 16380;

  bool operator==(const connection_options&) const = default;
};

// Counters for metrics; monotonically increasing over the connection's life.
struct connection_counters {
  std::uint64_t hello_received = 0;
  std::uint64_t notify_received = 0;
  std::uint64_t disconnect_received = 0;
  std::uint64_t unknown_received = 0;   // skipped frames of unknown type
  std::uint64_t messages_received = 0;  // messages across all NOTIFYs
  std::uint64_t hello_sent = 0;
  std::uint64_t ack_sent = 0;
  std::uint64_t disconnect_sent = 0;
  std::uint64_t actions_dropped = 0;   // dropped because the ACK would exceed the frame size
  std::uint64_t actions_rejected = 0;  // invalid variable names from the handler
};

class connection {
 public:
  connection(connection_options opts, notify_handler& handler) noexcept;

  // Decodes every complete frame in `in` and appends every frame to send to `out` (one
  // contiguous buffer, so the caller does one write per batch). Returns the bytes consumed;
  // the rest is an incomplete frame the caller keeps and presents again with more data
  // appended. Once closing() is true nothing more is consumed: flush `out`, then close.
  std::size_t on_bytes(std::span<const std::uint8_t> in, std::string& out);

  // True once the caller must flush `out` and then close the socket (DISCONNECT sent or
  // received, healthcheck answered, protocol error).
  bool closing() const noexcept { return state_ == state::closing; }

  // Agent-initiated shutdown or idle timeout: appends AGENT-DISCONNECT(st, message) and enters
  // closing. Does nothing if a DISCONNECT was already sent.
  void disconnect(status st, std::string_view message, std::string& out);

  // Why the connection closed: normal for a peer DISCONNECT, a healthcheck or a local
  // disconnect(normal); the protocol error otherwise. normal while still open.
  status last_status() const noexcept { return last_status_; }
  bool hello_done() const noexcept { return state_ != state::wait_hello && hello_ok_; }
  bool healthcheck() const noexcept { return healthcheck_; }
  // The negotiated max-frame-size, or the ceiling before HELLO. Read buffers need
  // frame_size() + 4 bytes.
  std::uint32_t frame_size() const noexcept { return frame_size_; }
  // The status code HAProxy's DISCONNECT carried (0 if none was received).
  std::uint64_t peer_status() const noexcept { return peer_status_; }
  const connection_counters& counters() const noexcept { return counters_; }

 private:
  enum class state : std::uint8_t { wait_hello, processing, closing };

  void fail(status st, std::string& out);
  void on_hello(const frame_view& f, std::string& out);
  void on_notify(const frame_view& f, std::string& out);
  void on_peer_disconnect(const frame_view& f, std::string& out);

  notify_handler& handler_;
  std::uint32_t ceiling_;
  std::uint32_t frame_size_;
  state state_ = state::wait_hello;
  bool hello_ok_ = false;
  bool healthcheck_ = false;
  bool disconnect_sent_ = false;
  status last_status_ = status::normal;
  std::uint64_t peer_status_ = 0;
  connection_counters counters_;
  message_view scratch_;  // reused for every message: no allocation per NOTIFY
};

}  // namespace spoa::spop
