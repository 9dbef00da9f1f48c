#pragma once
// Addresses as written in the config: listen endpoints ("127.0.0.1:12345", "[::1]:12345") and
// the http:// URLs of the workers' Prometheus endpoints. Pure string parsing: nothing here
// resolves a name or touches a socket.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spoa::config {

struct endpoint {
  std::string host;  // IPv4 literal, IPv6 literal WITHOUT brackets, or a DNS name
  std::uint16_t port = 0;

  bool operator==(const endpoint&) const = default;
};

// "HOST:PORT" or "[IPV6]:PORT". HOST is a dotted-quad IPv4 address, a DNS name (labels of
// A-Z a-z 0-9 - _, at most 253 characters) or, in brackets, an IPv6 address. PORT is decimal,
// 0..65535 (0 = any free port, which the tests use). Returns nullopt for anything else,
// including an unbracketed IPv6 address and a missing port.
std::optional<endpoint> parse_endpoint(std::string_view s);

struct http_url {
  std::string host;  // as in endpoint: an IPv6 literal is stored without brackets, so a Host
                     // header or a connect() caller must add them back
  std::uint16_t port = 80;
  std::string target;  // request target: path plus optional "?query", always starts with '/'

  bool operator==(const http_url&) const = default;
};

// "http://HOST[:PORT][/PATH][?QUERY]" with HOST as in parse_endpoint. The scheme is
// case-insensitive; PORT defaults to 80 and must be 1..65535; the target defaults to "/".
// Rejected: any other scheme (https is not supported: no TLS client), user info ("user@"),
// a fragment ('#'), spaces and control or non-ASCII characters in the target.
std::optional<http_url> parse_http_url(std::string_view s);

// True for an IPv4 or IPv6 address literal (no brackets), optionally followed by "/PREFIX" with
// PREFIX <= 32 or <= 128. Used for `spop.allow_from`.
bool is_address_or_cidr(std::string_view s);

// "10.0.0.0/8", "::1", "fd00::/8", "127.0.0.1" as bytes and a prefix length (an address alone is
// the block of that one address); nullopt for anything else (a host name, a prefix out of range,
// a prefix with more than three digits). The one CIDR parser: the config loader validates with it
// and the agent's allow-list is built from it.
struct cidr {
  std::array<unsigned char, 16> bytes{};  // network order; the first 4 for IPv4
  bool v6 = false;
  unsigned prefix = 0;  // <= 32 for IPv4, <= 128 for IPv6
};
std::optional<cidr> parse_cidr(std::string_view s);

// `shared.redis`: "redis://HOST:PORT[/DB]" with HOST:PORT as in parse_endpoint (PORT 1..65535,
// no default: the address is explicit) and DB 0..15 (default 0). No user info: the user and
// password have their own keys, so the URL can be logged.
struct redis_url {
  endpoint address;
  int db = 0;
  bool operator==(const redis_url&) const = default;
};
std::optional<redis_url> parse_redis_url(std::string_view s);

}  // namespace spoa::config
