#include "spop/disconnect.hpp"

#include "spop/frame.hpp"
#include "spop/reader.hpp"
#include "spop/typed_data.hpp"

namespace spoa::spop {

namespace {

constexpr std::string_view status_key = "status-code";
constexpr std::string_view message_key = "message";

void encode_disconnect(std::string& out, frame_type type, std::uint32_t code,
                       std::string_view message) {
  const std::size_t start = begin_frame(out, type, 0, 0);
  append_name(out, status_key);
  encode_typed(out, typed_value::make_uint32(code));
  append_name(out, message_key);
  encode_typed(out, typed_value::make_string(message));
  end_frame(out, start);
}

}  // namespace

disconnect_result parse_disconnect(std::span<const std::uint8_t> payload) noexcept {
  disconnect_result r;
  byte_reader in(payload);
  while (!in.empty()) {
    std::string_view key;
    typed_value v;
    if (!in.read_name(key) || !in.read_typed(v)) return {status::invalid, {}};
    if (key == status_key) {
      if (!v.is_integer()) return {status::invalid, {}};
      r.info.status_code = v.u;
      r.info.has_status_code = true;
    } else if (key == message_key) {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.info.message = v.bytes;
    }
  }
  return r;
}

void encode_agent_disconnect(std::string& out, status st, std::string_view message,
                             std::uint32_t max_frame_size) {
  // Frame bytes besides the message text, with sid = fid = 0 and a status code < 240:
  // type 1 + flags 4 + ids 2 + "status-code" 12 + 2 + "message" 8 + type 1 + length varint.
  constexpr std::size_t fixed =
      1 + 4 + 2 + (1 + status_key.size()) + 2 + (1 + message_key.size()) + 1;
  std::size_t budget = max_disconnect_message;
  const std::size_t room = max_frame_size > fixed ? max_frame_size - fixed : 0;  // varint + text
  if (room < 1 + budget + (budget >= 240 ? 1 : 0)) {
    // Largest n with varint_size(n) + n <= room; the length takes 2 bytes from 240 on.
    budget = room == 0 ? 0 : room - 1 < 240 ? room - 1 : room - 2;
  }
  if (message.size() > budget) {
    std::size_t n = budget;
    // Back off over UTF-8 continuation bytes so the cut lands on a character boundary.
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80)
      --n;
    message = message.substr(0, n);
  }
  encode_disconnect(out, frame_type::agent_disconnect, static_cast<std::uint32_t>(st), message);
}

void encode_haproxy_disconnect(std::string& out, std::uint32_t status_code,
                               std::string_view message) {
  encode_disconnect(out, frame_type::haproxy_disconnect, status_code, message);
}

}  // namespace spoa::spop
