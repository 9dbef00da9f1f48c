#include "routing/shared_wire.hpp"

#include <charconv>
#include <cmath>

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
  if (!valid_name(m.agent) || !valid_name(m.pool) || !valid_name(m.worker)) return std::nullopt;
  const auto h = parse_hex(hex);
  if (!h) return std::nullopt;
  m.table_hash = *h;
  return m;
}

std::string format_load(std::string_view agent,
                        const std::vector<std::pair<std::string_view, double>>& rates) {
  std::string m = "l1 ";
  m.append(agent);
  std::size_t n = 0;
  char digits[24];
  for (const auto& [worker, rps] : rates) {
    if (!(rps >= 0.0005) || !valid_name(worker) || n == max_load_entries) continue;
    const double v = std::min(std::round(rps * 1000.0), static_cast<double>(max_mrps));
    const auto r = std::to_chars(digits, digits + sizeof digits, static_cast<std::uint64_t>(v));
    m.push_back(' ');
    m.append(worker).push_back(' ');
    m.append(digits, r.ptr);
    ++n;
  }
  return m;
}

std::optional<std::string_view> parse_load(std::string_view s,
                                           std::vector<load_entry>& out) noexcept {
  out.clear();
  if (s.size() > max_load_message || (!s.empty() && s.back() == ' ')) return std::nullopt;
  if (next_field(s) != "l1") return std::nullopt;
  const std::string_view agent = next_field(s);
  if (!valid_name(agent)) return std::nullopt;
  while (!s.empty()) {
    const std::string_view worker = next_field(s);
    const std::string_view rate = next_field(s);
    if (!valid_name(worker) || rate.empty() || rate.size() > 13 || out.size() == max_load_entries)
      return std::nullopt;
    std::uint64_t v = 0;
    const auto r = std::from_chars(rate.data(), rate.data() + rate.size(), v);
    if (r.ec != std::errc{} || r.ptr != rate.data() + rate.size() || v > max_mrps)
      return std::nullopt;
    if (out.size() == out.capacity()) return std::nullopt;  // never grow: see the header
    out.push_back({worker, v});
  }
  return agent;
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
