#include "spop/connection.hpp"

#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"

namespace spoa::spop {

connection::connection(connection_options opts, notify_handler& handler) noexcept
    : handler_(handler),
      ceiling_(opts.max_frame_size < min_frame_size ? min_frame_size : opts.max_frame_size),
      frame_size_(ceiling_) {}

std::size_t connection::on_bytes(std::span<const std::uint8_t> in, std::string& out) {
  std::size_t consumed = 0;
  while (state_ != state::closing) {
    const frame_result r = decode_frame(in.subspan(consumed), frame_size_);
    if (r.state == decode_state::need_more) break;
    if (r.state == decode_state::error) {
      fail(r.error, out);
      break;
    }
    consumed += r.consumed;
    const frame_view& f = r.frame;
    switch (f.type) {
      case frame_type::notify:
        if (state_ != state::processing) {
          fail(status::invalid, out);
        } else {
          on_notify(f, out);
        }
        break;
      case frame_type::haproxy_hello:
        if (state_ != state::wait_hello) {
          fail(status::invalid, out);
        } else {
          on_hello(f, out);
        }
        break;
      case frame_type::haproxy_disconnect:
        on_peer_disconnect(f, out);
        break;
      case frame_type::unset:
        fail(status::fragmentation_not_supported, out);
        break;
      case frame_type::agent_hello:
      case frame_type::agent_disconnect:
      case frame_type::ack:
        fail(status::invalid, out);
        break;
      default:
        ++counters_.unknown_received;
        break;
    }
  }
  return consumed;
}

void connection::fail(status st, std::string& out) {
  disconnect(st, status_message(st), out);
}

void connection::disconnect(status st, std::string_view message, std::string& out) {
  if (!disconnect_sent_) {
    encode_agent_disconnect(out, st, message, frame_size_);
    disconnect_sent_ = true;
    ++counters_.disconnect_sent;
    if (state_ != state::closing) last_status_ = st;
  }
  state_ = state::closing;
}

void connection::on_hello(const frame_view& f, std::string& out) {
  ++counters_.hello_received;
  if (f.stream_id != 0 || f.frame_id != 0) return fail(status::invalid, out);
  const hello_result h = parse_haproxy_hello(f.payload);
  if (h.st != status::normal) return fail(h.st, out);
  frame_size_ = negotiate_frame_size(h.hello.max_frame_size, ceiling_);
  encode_agent_hello(out, frame_size_);
  ++counters_.hello_sent;
  hello_ok_ = true;
  if (h.hello.healthcheck) {
    // SPOE.txt §3.2.3: "AGENT-HELLO + close()" — no DISCONNECT needed.
    healthcheck_ = true;
    state_ = state::closing;
    return;
  }
  state_ = state::processing;
}

void connection::on_notify(const frame_view& f, std::string& out) {
  ++counters_.notify_received;
  std::size_t count = 0;
  if (validate_notify(f.payload, &count) != status::normal) return fail(status::invalid, out);
  counters_.messages_received += count;
  ack_builder ack(out, f.stream_id, f.frame_id, frame_size_);
  notify_reader reader(f.payload);
  while (reader.next(scratch_))
    handler_.on_message(scratch_, ack);
  ack.finish();
  ++counters_.ack_sent;
  counters_.actions_dropped += ack.dropped();
  counters_.actions_rejected += ack.rejected();
}

void connection::on_peer_disconnect(const frame_view& f, std::string& out) {
  ++counters_.disconnect_received;
  if (f.stream_id != 0 || f.frame_id != 0) return fail(status::invalid, out);
  const disconnect_result d = parse_disconnect(f.payload);
  if (d.st != status::normal) return fail(d.st, out);
  peer_status_ = d.info.status_code;
  disconnect(status::normal, status_message(status::normal), out);
}

}  // namespace spoa::spop
