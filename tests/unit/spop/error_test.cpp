#include "spop/error.hpp"

#include <gtest/gtest.h>

#include <system_error>

namespace spoa::spop {
namespace {

TEST(Error, EveryStatusHasItsTableMessage) {
  EXPECT_EQ(status_message(status::normal), "normal (no error occurred)");
  EXPECT_EQ(status_message(status::too_big), "frame is too big");
  EXPECT_EQ(status_message(status::invalid), "invalid frame received");
  EXPECT_EQ(status_message(status::fragmentation_not_supported),
            "payload fragmentation is not supported");
  for (int v : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 99})
    EXPECT_NE(status_message(static_cast<status>(v)), "unknown status") << v;
  EXPECT_EQ(status_message(static_cast<status>(42)), "unknown status");
}

TEST(Error, WiredIntoErrorCode) {
  const std::error_code ec = status::unsupported_version;  // via is_error_code_enum
  EXPECT_EQ(ec.value(), 8);
  EXPECT_EQ(&ec.category(), &spop_category());
  EXPECT_STREQ(ec.category().name(), "spop");
  EXPECT_EQ(ec.message(), "unsupported version");
  EXPECT_EQ(make_error_code(status::unknown).value(), 99);
  EXPECT_TRUE(ec == status::unsupported_version);
}

}  // namespace
}  // namespace spoa::spop
