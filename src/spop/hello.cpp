#include "spop/hello.hpp"

#include "spop/frame.hpp"
#include "spop/reader.hpp"
#include "spop/typed_data.hpp"

namespace spoa::spop {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Parses "Major.Minor" (decimal digits, no sign) into its two numbers.
bool parse_version(std::string_view s, std::uint32_t& major, std::uint32_t& minor) noexcept {
  const std::size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) return false;
  auto number = [](std::string_view digits, std::uint32_t& v) {
    if (digits.size() > 9) return false;
    v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return true;
  };
  return number(s.substr(0, dot), major) && number(s.substr(dot + 1), minor);
}

std::uint32_t saturate32(std::uint64_t v) noexcept {
  return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(v);
}

}  // namespace

bool supports_version_2_0(std::string_view versions) noexcept {
  while (true) {
    const std::size_t comma = versions.find(',');
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    if (parse_version(trim(versions.substr(0, comma)), major, minor) && major == 2 && minor == 0)
      return true;
    if (comma == std::string_view::npos) return false;
    versions.remove_prefix(comma + 1);
  }
}

hello_result parse_haproxy_hello(std::span<const std::uint8_t> payload) noexcept {
  hello_result r;
  bool have_versions = false;
  bool have_frame_size = false;
  std::int64_t frame_size = 0;  // signed: an INT32/INT64 may carry a negative value
  bool frame_size_huge = false;
  byte_reader in(payload);
  while (!in.empty()) {
    std::string_view key;
    typed_value v;
    if (!in.read_name(key) || !in.read_typed(v)) return {status::invalid, {}};
    if (key == "supported-versions") {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.hello.supported_versions = v.bytes;
      have_versions = true;
    } else if (key == "max-frame-size") {
      if (!v.is_integer()) return {status::invalid, {}};
      have_frame_size = true;
      const bool is_signed = v.type == data_type::int32 || v.type == data_type::int64;
      frame_size_huge = !is_signed && v.u > 0x7FFFFFFFFFFFFFFFull;
      frame_size = v.i;
    } else if (key == "capabilities") {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.hello.capabilities = v.bytes;
    } else if (key == "engine-id") {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.hello.engine_id = v.bytes;
    } else if (key == "healthcheck") {
      if (v.type != data_type::boolean) return {status::invalid, {}};
      r.hello.healthcheck = v.boolean;
    }
  }
  if (!have_versions) return {status::no_version, r.hello};
  if (!supports_version_2_0(r.hello.supported_versions))
    return {status::unsupported_version, r.hello};
  if (!have_frame_size) return {status::no_frame_size, r.hello};
  if (!frame_size_huge && frame_size < std::int64_t{min_frame_size})
    return {status::bad_frame_size, r.hello};
  r.hello.max_frame_size =
      frame_size_huge ? 0xFFFFFFFFu : saturate32(static_cast<std::uint64_t>(frame_size));
  return r;
}

void encode_agent_hello(std::string& out, std::uint32_t max_frame_size) {
  const std::size_t start = begin_frame(out, frame_type::agent_hello, 0, 0);
  append_name(out, "version");
  encode_typed(out, typed_value::make_string(agent_version));
  append_name(out, "max-frame-size");
  encode_typed(out, typed_value::make_uint32(max_frame_size));
  append_name(out, "capabilities");
  encode_typed(out, typed_value::make_string(agent_capabilities));
  end_frame(out, start);
}

void encode_haproxy_hello(std::string& out, const haproxy_hello& hello) {
  const std::size_t start = begin_frame(out, frame_type::haproxy_hello, 0, 0);
  append_name(out, "supported-versions");
  encode_typed(out, typed_value::make_string(hello.supported_versions));
  append_name(out, "max-frame-size");
  encode_typed(out, typed_value::make_uint32(hello.max_frame_size));
  append_name(out, "capabilities");
  encode_typed(out, typed_value::make_string(hello.capabilities));
  if (!hello.engine_id.empty()) {
    append_name(out, "engine-id");
    encode_typed(out, typed_value::make_string(hello.engine_id));
  }
  if (hello.healthcheck) {
    append_name(out, "healthcheck");
    encode_typed(out, typed_value::make_bool(true));
  }
  end_frame(out, start);
}

agent_hello_result parse_agent_hello(std::span<const std::uint8_t> payload) noexcept {
  agent_hello_result r;
  bool have_version = false;
  bool have_frame_size = false;
  byte_reader in(payload);
  while (!in.empty()) {
    std::string_view key;
    typed_value v;
    if (!in.read_name(key) || !in.read_typed(v)) return {status::invalid, {}};
    if (key == "version") {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.hello.version = v.bytes;
      have_version = true;
    } else if (key == "max-frame-size") {
      if (!v.is_integer()) return {status::invalid, {}};
      r.hello.max_frame_size = v.u;
      have_frame_size = true;
    } else if (key == "capabilities") {
      if (v.type != data_type::string) return {status::invalid, {}};
      r.hello.capabilities = v.bytes;
    }
  }
  if (!have_version) return {status::no_version, r.hello};
  if (!have_frame_size) return {status::no_frame_size, r.hello};
  return r;
}

}  // namespace spoa::spop
