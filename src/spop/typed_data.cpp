#include "spop/typed_data.hpp"

namespace spoa::spop {

void encode_typed(std::string& out, const typed_value& v) {
  switch (v.type) {
    case data_type::null:
      out.push_back('\x00');
      return;
    case data_type::boolean:
      out.push_back(v.boolean ? '\x11' : '\x01');
      return;
    case data_type::int32:
    case data_type::uint32:
    case data_type::int64:
    case data_type::uint64:
      out.push_back(static_cast<char>(v.type));
      append_varint(out, v.u);
      return;
    case data_type::ipv4:
    case data_type::ipv6: {
      const std::size_t n = v.type == data_type::ipv4 ? 4 : 16;
      out.push_back(static_cast<char>(v.type));
      const std::size_t k = v.bytes.size() < n ? v.bytes.size() : n;
      out.append(v.bytes.data(), k);
      out.append(n - k, '\x00');
      return;
    }
    case data_type::string:
    case data_type::binary:
      out.push_back(static_cast<char>(v.type));
      append_varint(out, v.bytes.size());
      out.append(v.bytes);
      return;
  }
  out.push_back('\x00');
}

}  // namespace spoa::spop
