// The log line formats (agent/log.hpp): text exactly as the agent always wrote it, JSON one
// escaped object per line, and the level filter in front of both.

#include "agent/log.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace spoa::agent {
namespace {

constexpr std::uint64_t t0 = 1764691364123;  // 2025-12-02T16:02:44.123Z

std::string json(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(log_format_text, is_timestamp_level_message) {
  EXPECT_EQ(format_log_line(log_format::text, log_level::info, t0, "reloaded /etc/x.yaml"),
            "2025-12-02T16:02:44.123Z info reloaded /etc/x.yaml\n");
  // Fields are for JSON only: the text line stays what it always was.
  const log_field f[] = {{"event", "reload"}, {"workers", 13}};
  EXPECT_EQ(format_log_line(log_format::text, log_level::warn, t0 + 877, "x", f),
            "2025-12-02T16:02:45.000Z warn x\n");
  EXPECT_EQ(format_log_line(log_format::text, log_level::error, 5, "y"),
            "1970-01-01T00:00:00.005Z error y\n");
}

TEST(log_format_json, ts_level_msg_then_fields_in_order) {
  const std::string worker = "room3";  // a field is a view: the string outlives it
  const log_field f[] = {
      {"event", "worker_state"},
      {"worker", worker},
      {"cpu", 0.93},
      {"lag", std::numeric_limits<double>::quiet_NaN()},
      {"failures", 3},
      {"keys", std::uint64_t{18446744073709551}},
      {"drain", true},
      {"stale", false},
      {"big", std::numeric_limits<double>::infinity()},
      log_field::raw("by_cause", R"({"down":40,"drain":2})"),
      log_field::raw("empty", ""),
  };
  EXPECT_EQ(
      format_log_line(log_format::json, log_level::info, t0, "load: room3: healthy -> down", f),
      R"({"ts":"2025-12-02T16:02:44.123Z","level":"info","msg":"load: room3: healthy -> down",)"
      R"("event":"worker_state","worker":"room3","cpu":0.93,"lag":null,"failures":3,)"
      R"("keys":18446744073709551,"drain":true,"stale":false,"big":null,)"
      R"("by_cause":{"down":40,"drain":2},"empty":null})"
      "\n");
  EXPECT_EQ(format_log_line(log_format::json, log_level::debug, t0, ""),
            R"({"ts":"2025-12-02T16:02:44.123Z","level":"debug","msg":""})"
            "\n");
}

TEST(log_format_json, numbers_have_six_significant_digits) {
  const log_field f[] = {{"a", 0.1},         {"b", 1e-7},     {"c", -2.5},
                         {"d", 1.0},         {"e", -7},       {"f", 0.009996264130643613},
                         {"g", 1.000064058}, {"h", 1234567.0}};
  EXPECT_EQ(format_log_line(log_format::json, log_level::info, t0, "m", f),
            R"({"ts":"2025-12-02T16:02:44.123Z","level":"info","msg":"m","a":0.1,"b":1e-07,)"
            R"("c":-2.5,"d":1,"e":-7,"f":0.00999626,"g":1.00006,"h":1.23457e+06})"
            "\n");
}

TEST(log_json_string, escapes_quotes_backslashes_and_controls) {
  EXPECT_EQ(json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json("line1\nline2\r\tx"), R"("line1\nline2\r\tx")");
  EXPECT_EQ(json(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json("</script>"), R"("</script>")");
}

TEST(log_json_string, keeps_utf8_and_replaces_what_is_not) {
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json("\xff"), R"("\ufffd")");
  EXPECT_EQ(json("a\x80z"), R"("a\ufffdz")");                            // lone continuation byte
  EXPECT_EQ(json("\xc0\xaf"), R"("\ufffd\ufffd")");                      // overlong '/'
  EXPECT_EQ(json("\xe0\x80\xaf"), R"("\ufffd\ufffd\ufffd")");            // overlong, 3 bytes
  EXPECT_EQ(json("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // UTF-16 surrogate
  EXPECT_EQ(json("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  EXPECT_EQ(json("\xe2\x82"), R"("\ufffd\ufffd")");                      // cut short at the end
  EXPECT_EQ(json("\xe2\x82z"), R"("\ufffd\ufffdz")");                    // cut short before ASCII
}

// Whatever bytes a message holds (a scrape error quoting a body, a peer's DISCONNECT text), the
// JSON line is one line of printable ASCII or UTF-8 with no raw control character.
TEST(log_format_json, any_bytes_stay_on_one_line) {
  std::mt19937 rng(16);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
  for (int i = 0; i < 20000; ++i) {
    std::string msg(static_cast<std::size_t>(len(rng)), '\0');
    for (char& c : msg)
      c = static_cast<char>(byte(rng));
    const log_field f[] = {{"error", msg}};
    const std::string line = format_log_line(log_format::json, log_level::warn, t0, msg, f);
    ASSERT_EQ(line.back(), '\n');
    for (std::size_t k = 0; k + 1 < line.size(); ++k) {
      const auto c = static_cast<unsigned char>(line[k]);
      ASSERT_TRUE(c >= 0x20 && c != 0x7f) << "byte " << int(c) << " at " << k;
    }
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line[line.size() - 2], '}');
  }
}

std::vector<std::string>* g_lines = nullptr;
void capture(std::string_view line) {
  g_lines->emplace_back(line);
}

class log_sink_test : public ::testing::Test {
 protected:
  void SetUp() override {
    g_lines = &lines_;
    set_log_sink(&capture);
  }
  void TearDown() override {
    set_log_sink(nullptr);
    set_log_level(log_level::info);
    set_log_format(log_format::text);
    g_lines = nullptr;
  }
  std::vector<std::string> lines_;
};

TEST_F(log_sink_test, the_level_filters_before_anything_is_written) {
  set_log_level(log_level::warn);
  log_info("not shown", {{"event", "x"}});
  log(log_level::debug, "not shown");
  EXPECT_TRUE(lines_.empty());
  EXPECT_FALSE(log_enabled(log_level::info));
  EXPECT_TRUE(log_enabled(log_level::warn));
  log_warn("shown");
  log_error("shown too");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_NE(lines_[0].find(" warn shown\n"), std::string::npos);
  EXPECT_NE(lines_[1].find(" error shown too\n"), std::string::npos);
}

TEST_F(log_sink_test, the_format_switches_every_line_after_it) {
  log_info("plain", {{"event", "a"}});
  set_log_format(log_format::json);
  log_info("structured", {{"event", "a"}, {"n", 2}});
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].substr(24), " info plain\n");
  EXPECT_EQ(lines_[1].substr(0, 7), "{\"ts\":\"");
  EXPECT_EQ(lines_[1].substr(31), R"(","level":"info","msg":"structured","event":"a","n":2})"
                                  "\n");
}

TEST(log_options, parse_names) {
  log_format f = log_format::text;
  EXPECT_TRUE(parse_log_format("json", &f));
  EXPECT_EQ(f, log_format::json);
  EXPECT_TRUE(parse_log_format("text", &f));
  EXPECT_EQ(f, log_format::text);
  EXPECT_FALSE(parse_log_format("JSON", &f));
  EXPECT_FALSE(parse_log_format("", &f));
  log_level l = log_level::info;
  EXPECT_TRUE(parse_log_level("debug", &l));
  EXPECT_EQ(l, log_level::debug);
  EXPECT_FALSE(parse_log_level("verbose", &l));
}

}  // namespace
}  // namespace spoa::agent
