#include "routing/shared_wire.hpp"

namespace spoa::routing::shared_wire {
namespace {

void append_hex(std::string& out, std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4)
    out.push_back(digits[(v >> shift) & 0xf]);
}

std::optional<std::uint64_t> parse_hex(std::string_view s) noexcept {
  if (s.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

// The next space-separated field; empty when none.
std::string_view next_field(std::string_view& s) noexcept {
  const std::size_t sp = s.find(' ');
  std::string_view f = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return f;
}

}  // namespace

bool valid_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_name) return false;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f) return false;
  }
  return true;
}

std::string key(std::string_view prefix, std::string_view pool, std::uint64_t table_hash) {
  std::string k;
  k.reserve(prefix.size() + pool.size() + 20);
  k.append(prefix).append("a:").append(pool).push_back(':');
  append_hex(k, table_hash);
  return k;
}

std::string channel(std::string_view prefix) {
  return std::string(prefix) + "moves";
}

std::string format_move(std::string_view agent, std::string_view pool, std::uint64_t table_hash,
                        std::string_view worker) {
  std::string m = "m1 ";
  m.append(agent).push_back(' ');
  m.append(pool).push_back(' ');
  append_hex(m, table_hash);
  m.push_back(' ');
  m.append(worker);
  return m;
}

std::optional<move_message> parse_move(std::string_view s) noexcept {
  if (s.size() > max_message) return std::nullopt;
  if (next_field(s) != "m1") return std::nullopt;
  move_message m;
  m.agent = next_field(s);
  m.pool = next_field(s);
  const std::string_view hex = next_field(s);
  m.worker = s;  // the rest: a trailing or second space makes it invalid
  if (!valid_name(m.agent) || !valid_name(m.pool) || !valid_name(m.worker))
    return std::nullopt;
  const auto h = parse_hex(hex);
  if (!h) return std::nullopt;
  m.table_hash = *h;
  return m;
}

std::optional<key_parts> parse_key(std::string_view prefix, std::string_view k) noexcept {
  if (k.size() < prefix.size() + 2 || k.substr(0, prefix.size()) != prefix) return std::nullopt;
  k.remove_prefix(prefix.size());
  if (k.substr(0, 2) != "a:") return std::nullopt;
  k.remove_prefix(2);
  const std::size_t colon = k.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  key_parts p;
  p.pool = k.substr(0, colon);
  const auto h = parse_hex(k.substr(colon + 1));
  if (!h || !valid_name(p.pool)) return std::nullopt;
  p.table_hash = *h;
  return p;
}

}  // namespace spoa::routing::shared_wire
