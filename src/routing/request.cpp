#include "routing/request.hpp"

#include "routing/load_view.hpp"

namespace spoa::routing {

std::string_view query_of(const request& r) noexcept {
  if (!r.query.empty()) return r.query;
  const std::size_t q = r.path.find('?');
  return q == std::string_view::npos ? std::string_view() : r.path.substr(q + 1);
}

std::optional<std::string_view> query_param(std::string_view query,
                                            std::string_view name) noexcept {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    const std::size_t eq = param.find('=');
    if (param.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool long_poll(const request& r) noexcept {
  const auto v = query_param(query_of(r), "timeout");
  if (!v || v->empty()) return false;
  bool nonzero = false;
  for (const char c : *v) {
    if (c < '0' || c > '9') return false;
    nonzero = nonzero || c != '0';
  }
  return nonzero;
}

std::string_view to_string(key_kind k) noexcept {
  switch (k) {
    case key_kind::none:
      return "none";
    case key_kind::room:
      return "room";
    case key_kind::user:
      return "user";
    case key_kind::origin:
      return "origin";
  }
  return "none";
}

std::string_view to_string(worker_state s) noexcept {
  switch (s) {
    case worker_state::unknown:
      return "unknown";
    case worker_state::healthy:
      return "healthy";
    case worker_state::hot:
      return "hot";
    case worker_state::down:
      return "down";
    case worker_state::stalled:
      return "stalled";
  }
  return "unknown";
}

}  // namespace spoa::routing
