#include "routing/request.hpp"

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

}  // namespace spoa::routing
