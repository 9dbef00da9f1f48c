#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "load/extract.hpp"

namespace {

std::string read_sample() {
  std::ifstream in(SPOA_PROMTEXT_SAMPLE, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LoadExtract, SynapseSample) {
  auto r = spoa::load::extract(read_sample());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.cpu_seconds, 1843.27);
  EXPECT_EQ(r.value.start_time, 1.72181000055e+09);
  EXPECT_EQ(r.value.tick_sum, 1488.52);
  EXPECT_EQ(r.value.tick_count, 596133.0);
  EXPECT_EQ(r.value.in_flight, 5.0);  // 4 RoomMessageListRestServlet + 1 RoomSendEventRestServlet
  EXPECT_EQ(r.value.sched_sum, 310.2);
  EXPECT_EQ(r.value.sched_count, 984310.0);
  EXPECT_EQ(r.value.reactor_last_seen, 0.0031);
}

TEST(LoadExtract, LongPollServletsAreNotInFlightLoad) {
  const std::string body = read_sample() +
                           "# HELP synapse_http_server_in_flight_requests_count \n"
                           "# TYPE synapse_http_server_in_flight_requests_count gauge\n"
                           "synapse_http_server_in_flight_requests_count{method=\"GET\","
                           "server_name=\"example.org\",servlet=\"SyncRestServlet\"} 812.0\n"
                           "synapse_http_server_in_flight_requests_count{method=\"GET\","
                           "server_name=\"example.org\",servlet=\"EventStreamRestServlet\"} 7.0\n"
                           "synapse_http_server_in_flight_requests_count{method=\"POST\","
                           "server_name=\"example.org\",servlet=\"KeyQueryServlet\"} 2.0\n";
  auto r = spoa::load::extract(body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.in_flight, 7.0);
}

TEST(LoadExtract, AbsentFamiliesAreNanAndAbsentInFlightIsZero) {
  auto r = spoa::load::extract("process_cpu_seconds_total 12.5\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.cpu_seconds, 12.5);
  EXPECT_EQ(r.value.in_flight, 0.0);
  EXPECT_TRUE(std::isnan(r.value.tick_sum));
  EXPECT_TRUE(std::isnan(r.value.tick_count));
  EXPECT_TRUE(std::isnan(r.value.sched_sum));
  EXPECT_TRUE(std::isnan(r.value.start_time));
  EXPECT_TRUE(std::isnan(r.value.reactor_last_seen));
}

TEST(LoadExtract, OpenMetricsBody) {
  auto r = spoa::load::extract(
      "# TYPE process_cpu_seconds counter\n"
      "process_cpu_seconds_total 3.25\n"
      "process_cpu_seconds_created 1.7e9\n"
      "# EOF\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.cpu_seconds, 3.25);
}

TEST(LoadExtract, GarbageBodiesFail) {
  auto html = spoa::load::extract("<html><body>502 Bad Gateway</body></html>\n");
  EXPECT_FALSE(html.ok);
  EXPECT_EQ(html.error,
            "line 1: expected a metric name, '#' or '{' at the start of the line, found '<'");

  auto bad_line =
      spoa::load::extract("process_cpu_seconds_total 1\nprocess_cpu_seconds_total ten\n");
  EXPECT_FALSE(bad_line.ok);
  EXPECT_EQ(bad_line.error, "line 2: invalid value \"ten\" for \"process_cpu_seconds_total\"");

  // A family the model does not read is skipped by name, undecoded: its garbage goes unseen.
  EXPECT_TRUE(spoa::load::extract("process_cpu_seconds_total 1\nprocess_open_fds ten\n").ok);

  // A wanted line that is malformed fails too, even when the rest is fine.
  auto bad_wanted = spoa::load::extract(read_sample() + "process_cpu_seconds_total 1 2 3\n");
  EXPECT_FALSE(bad_wanted.ok);
  EXPECT_EQ(bad_wanted.error, "line 94: unexpected text \"3\" after the sample");

  auto empty = spoa::load::extract("");
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(empty.error,
            "no process_cpu_seconds_total or python_twisted_reactor_tick_time_count in the body");

  auto other = spoa::load::extract("# TYPE up gauge\nup 1\n");
  EXPECT_FALSE(other.ok);
}

}  // namespace
