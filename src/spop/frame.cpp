#include "spop/frame.hpp"

#include "spop/varint.hpp"

namespace spoa::spop {

namespace {

constexpr std::uint32_t load_be32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

frame_result fail(status st) noexcept {
  frame_result r;
  r.state = decode_state::error;
  r.error = st;
  return r;
}

}  // namespace

frame_result decode_frame(std::span<const std::uint8_t> in, std::uint32_t max_frame_size) noexcept {
  if (in.size() < length_prefix_size) return {};
  const std::uint32_t len = load_be32(in.data());
  if (len == 0) return fail(status::invalid);
  if (len > max_frame_size) return fail(status::too_big);
  if (in.size() - length_prefix_size < len) return {};

  const std::uint8_t* p = in.data() + length_prefix_size;
  const std::uint8_t* const end = p + len;
  frame_result r;
  // TYPE (1) + FLAGS (4): a frame shorter than that cannot even carry its IDs.
  if (len < 5) return fail(status::invalid);
  r.frame.type = static_cast<frame_type>(p[0]);
  r.frame.flags = load_be32(p + 1);
  p += 5;
  const varint_result sid = decode_varint(p, end);
  if (sid.size == 0) return fail(status::invalid);
  p += sid.size;
  const varint_result fid = decode_varint(p, end);
  if (fid.size == 0) return fail(status::invalid);
  p += fid.size;
  if ((r.frame.flags & flag_fin) == 0) return fail(status::fragmentation_not_supported);
  r.frame.stream_id = sid.value;
  r.frame.frame_id = fid.value;
  r.frame.payload = std::span<const std::uint8_t>(p, static_cast<std::size_t>(end - p));
  r.state = decode_state::frame;
  r.consumed = length_prefix_size + len;
  return r;
}

std::size_t begin_frame(std::string& out, frame_type type, std::uint64_t stream_id,
                        std::uint64_t frame_id, std::uint32_t flags) {
  const std::size_t start = out.size();
  const char header[9] = {0,
                          0,
                          0,
                          0,
                          static_cast<char>(type),
                          static_cast<char>(flags >> 24),
                          static_cast<char>(flags >> 16),
                          static_cast<char>(flags >> 8),
                          static_cast<char>(flags)};
  out.append(header, sizeof header);
  append_varint(out, stream_id);
  append_varint(out, frame_id);
  return start;
}

void end_frame(std::string& out, std::size_t start) noexcept {
  const auto len = static_cast<std::uint32_t>(out.size() - start - length_prefix_size);
  out[start + 0] = static_cast<char>(len >> 24);
  out[start + 1] = static_cast<char>(len >> 16);
  out[start + 2] = static_cast<char>(len >> 8);
  out[start + 3] = static_cast<char>(len);
}

void encode_frame(std::string& out, frame_type type, std::uint32_t flags, std::uint64_t stream_id,
                  std::uint64_t frame_id, std::string_view payload) {
  const std::size_t start = begin_frame(out, type, stream_id, frame_id, flags);
  out.append(payload);
  end_frame(out, start);
}

}  // namespace spoa::spop
