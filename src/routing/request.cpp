#include "routing/request.hpp"

#include "routing/load_view.hpp"

namespace spoa::routing {

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
