#include "config/duration.hpp"

#include <gtest/gtest.h>

namespace spoa::config {
namespace {

using std::chrono::milliseconds;

TEST(parse_duration, units) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds{250});
  EXPECT_EQ(parse_duration("2s"), milliseconds{2'000});
  EXPECT_EQ(parse_duration("5m"), milliseconds{300'000});
  EXPECT_EQ(parse_duration("1h"), milliseconds{3'600'000});
  EXPECT_EQ(parse_duration("1d"), milliseconds{86'400'000});
  EXPECT_EQ(parse_duration("0s"), milliseconds{0});  // syntactically fine; callers bound it
}

TEST(parse_duration, combined_parts_add_up) {
  EXPECT_EQ(parse_duration("1h30m"), milliseconds{5'400'000});
  EXPECT_EQ(parse_duration("1s500ms"), milliseconds{1'500});
  EXPECT_EQ(parse_duration("5m5ms"), milliseconds{300'005});  // "ms" is not "m" then "s"
}

TEST(parse_duration, rejects_malformed) {
  for (const char* s : {"", "10", "s", "1.5s", "-1s", "+1s", " 1s", "1s ", "1 s", "1S", "1sec",
                        "1w", "1y", "1m5", "ms", "1mm", "1h-30m", "0x10s"}) {
    EXPECT_EQ(parse_duration(s), std::nullopt) << s;
  }
}

TEST(parse_duration, bounded_at_max_duration) {
  EXPECT_EQ(parse_duration("365d"), max_duration);
  EXPECT_EQ(parse_duration("31536000000ms"), max_duration);
  EXPECT_EQ(parse_duration("31536000001ms"), std::nullopt);
  EXPECT_EQ(parse_duration("365d1ms"), std::nullopt);
  EXPECT_EQ(parse_duration("366d"), std::nullopt);
  // Would overflow int64 if multiplied blindly.
  EXPECT_EQ(parse_duration("99999999999999999999999d"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775807ms"), std::nullopt);
}

TEST(format_duration, shortest_form_reads_back) {
  EXPECT_EQ(format_duration(milliseconds{0}), "0ms");
  EXPECT_EQ(format_duration(milliseconds{250}), "250ms");
  EXPECT_EQ(format_duration(milliseconds{2'000}), "2s");
  EXPECT_EQ(format_duration(milliseconds{5'400'000}), "1h30m");
  EXPECT_EQ(format_duration(milliseconds{86'400'000}), "1d");
  EXPECT_EQ(format_duration(milliseconds{90'061'001}), "1d1h1m1s1ms");
  for (long long v : {1LL, 999LL, 1'000LL, 61'001LL, 3'600'000LL, 123'456'789LL}) {
    EXPECT_EQ(parse_duration(format_duration(milliseconds{v})), milliseconds{v}) << v;
  }
}

}  // namespace
}  // namespace spoa::config
