#include "spop/error.hpp"

#include <string>

namespace spoa::spop {

std::string_view status_message(status st) noexcept {
  switch (st) {
    case status::normal:
      return "normal (no error occurred)";
    case status::io_error:
      return "I/O error";
    case status::timeout:
      return "a timeout occurred";
    case status::too_big:
      return "frame is too big";
    case status::invalid:
      return "invalid frame received";
    case status::no_version:
      return "version value not found";
    case status::no_frame_size:
      return "max-frame-size value not found";
    case status::no_capabilities:
      return "capabilities value not found";
    case status::unsupported_version:
      return "unsupported version";
    case status::bad_frame_size:
      return "max-frame-size too big or too small";
    case status::fragmentation_not_supported:
      return "payload fragmentation is not supported";
    case status::interlaced_frames:
      return "invalid interlaced frames";
    case status::frame_id_not_found:
      return "frame-id not found (it does not match any referenced frame)";
    case status::resource_allocation:
      return "resource allocation error";
    case status::unknown:
      return "an unknown error occurred";
  }
  return "unknown status";
}

namespace {

class spop_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "spop"; }
  std::string message(int ev) const override {
    if (ev < 0 || ev > 255) return "unknown status";
    return std::string(status_message(static_cast<status>(ev)));
  }
};

}  // namespace

const std::error_category& spop_category() noexcept {
  static const spop_category_impl category;
  return category;
}

}  // namespace spoa::spop
