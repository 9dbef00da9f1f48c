#include "config/endpoint.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace spoa::config {

namespace {

// inet_pton needs a NUL-terminated string; bound the copy so no input allocates.
bool parse_ip(int family, std::string_view s) {
  std::array<char, 64> buf{};
  if (s.empty() || s.size() >= buf.size()) return false;
  std::memcpy(buf.data(), s.data(), s.size());
  std::array<unsigned char, 16> out{};
  return ::inet_pton(family, buf.data(), out.data()) == 1;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t label_len = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (label_len == 0 || s[i - 1] == '-') return false;
      label_len = 0;
      continue;
    }
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return false;
    if (c == '-' && label_len == 0) return false;
    if (++label_len > 63) return false;
  }
  return label_len > 0 && s.back() != '-';
}

// A host as it appears in an endpoint or URL authority, brackets included for IPv6.
// Returns the host without brackets, or nullopt.
std::optional<std::string> parse_host(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s.front() == '[') {
    if (s.size() < 3 || s.back() != ']') return std::nullopt;
    const std::string_view inner = s.substr(1, s.size() - 2);
    if (!parse_ip(AF_INET6, inner)) return std::nullopt;
    return std::string(inner);
  }
  bool all_numeric = true;
  for (char c : s)
    all_numeric = all_numeric && (is_digit(c) || c == '.');
  // Digits and dots only: it must be a valid dotted quad, never a "name" like 999.1.1.1.
  if (all_numeric) {
    if (!parse_ip(AF_INET, s)) return std::nullopt;
    return std::string(s);
  }
  if (!is_dns_name(s)) return std::nullopt;
  return std::string(s);
}

std::optional<std::uint32_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  std::uint32_t n = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (n > 65535) return std::nullopt;
  return n;
}

// Splits "host:port" / "[v6]:port" at the port colon; a bracketed host may contain colons.
// Returns false when there is no port separator.
bool split_host_port(std::string_view s, std::string_view& host, std::string_view& port) {
  std::size_t colon;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    if (close + 1 >= s.size() || s[close + 1] != ':') return false;
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    // More than one colon outside brackets: an unbracketed IPv6 address.
    if (s.find(':') != colon) return false;
  }
  host = s.substr(0, colon);
  port = s.substr(colon + 1);
  return true;
}

}  // namespace

std::optional<endpoint> parse_endpoint(std::string_view s) {
  std::string_view host_text, port_text;
  if (!split_host_port(s, host_text, port_text)) return std::nullopt;
  auto host = parse_host(host_text);
  auto port = parse_port(port_text);
  if (!host || !port) return std::nullopt;
  return endpoint{std::move(*host), static_cast<std::uint16_t>(*port)};
}

std::optional<http_url> parse_http_url(std::string_view s) {
  constexpr std::string_view scheme = "http://";
  if (s.size() < scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i]) return std::nullopt;
  }
  s.remove_prefix(scheme.size());

  const std::size_t authority_end = s.find_first_of("/?#");
  const std::string_view authority = s.substr(0, authority_end);
  std::string_view rest =
      authority_end == std::string_view::npos ? std::string_view{} : s.substr(authority_end);

  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host_text = authority, port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      has_port = true;
    }
  } else if (authority.find(':') != std::string_view::npos) {
    has_port = true;
  }
  if (has_port && !split_host_port(authority, host_text, port_text)) return std::nullopt;

  http_url url;
  auto host = parse_host(host_text);
  if (!host) return std::nullopt;
  url.host = std::move(*host);
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port || *port == 0) return std::nullopt;
    url.port = static_cast<std::uint16_t>(*port);
  }
  for (char c : rest) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#') return std::nullopt;
  }
  if (rest.empty()) {
    url.target = "/";
  } else if (rest.front() == '?') {
    url.target = "/" + std::string(rest);
  } else {
    url.target = std::string(rest);
  }
  return url;
}

std::optional<cidr> parse_cidr(std::string_view s) {
  const std::size_t slash = s.find('/');
  const std::string_view addr = s.substr(0, slash);
  cidr out;
  out.v6 = addr.find(':') != std::string_view::npos;
  std::array<char, 64> buf{};
  if (addr.empty() || addr.size() >= buf.size()) return std::nullopt;
  std::memcpy(buf.data(), addr.data(), addr.size());
  if (::inet_pton(out.v6 ? AF_INET6 : AF_INET, buf.data(), out.bytes.data()) != 1)
    return std::nullopt;
  const unsigned max = out.v6 ? 128U : 32U;
  out.prefix = max;
  if (slash == std::string_view::npos) return out;
  const std::string_view prefix = s.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3) return std::nullopt;
  unsigned n = 0;
  for (char c : prefix) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n > max) return std::nullopt;
  out.prefix = n;
  return out;
}

bool is_address_or_cidr(std::string_view s) {
  return parse_cidr(s).has_value();
}

std::optional<redis_url> parse_redis_url(std::string_view s) {
  constexpr std::string_view scheme = "redis://";
  if (s.size() < scheme.size() || s.substr(0, scheme.size()) != scheme) return std::nullopt;
  s.remove_prefix(scheme.size());
  redis_url u;
  const std::size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    const std::string_view db = s.substr(slash + 1);
    if (db.empty() || db.size() > 2) return std::nullopt;
    int v = 0;
    for (const char c : db) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    if (v > 15) return std::nullopt;
    u.db = v;
    s = s.substr(0, slash);
  }
  auto ep = parse_endpoint(s);
  if (!ep || ep->port == 0) return std::nullopt;
  u.address = std::move(*ep);
  return u;
}

}  // namespace spoa::config
