#pragma once
// The notify handler both SPOP fuzz targets use: echoes every argument back as a variable, so
// hostile lengths reach the ACK size limit. Deterministic: the same message always produces the
// same actions (spop_connection_fuzz compares two runs byte for byte).

#include "spop/connection.hpp"
#include "spop/message.hpp"

namespace spoa::spop::fuzz {

class echo_handler final : public notify_handler {
 public:
  void on_message(const message_view& msg, ack_builder& ack) override {
    for (const arg& a : msg.args()) {
      if (a.value.type == data_type::string || a.value.type == data_type::binary)
        ack.set_var(scope::txn, "v", a.value.bytes);
      else if (a.value.is_integer())
        ack.set_var(scope::txn, "i", a.value.i);
    }
    (void)msg.find("path");
    (void)msg.string_arg("method");
  }
};

}  // namespace spoa::spop::fuzz
