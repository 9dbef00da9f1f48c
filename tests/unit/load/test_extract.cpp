#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

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

std::string read_real(const std::string& name) {
  std::ifstream in(std::string(SPOA_REAL_BODIES) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- real Synapse 1.160 bodies (tests/unit/load/real/README.md): the numbers written in each ---

struct real_golden {
  const char* file;
  double cpu_seconds;
  double start_time;
  double tick_sum;
  double tick_count;
  double in_flight;
  double sched_sum;
  double sched_count;
  double reactor_last_seen;
  double notifier_listeners;
};

class LoadExtractReal : public ::testing::TestWithParam<real_golden> {};

TEST_P(LoadExtractReal, ExactValues) {
  const real_golden& g = GetParam();
  const std::string body = read_real(g.file);
  ASSERT_FALSE(body.empty()) << g.file;
  auto r = spoa::load::extract(body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.cpu_seconds, g.cpu_seconds);
  EXPECT_EQ(r.value.start_time, g.start_time);
  EXPECT_EQ(r.value.tick_sum, g.tick_sum);
  EXPECT_EQ(r.value.tick_count, g.tick_count);
  EXPECT_EQ(r.value.in_flight, g.in_flight);
  EXPECT_EQ(r.value.sched_sum, g.sched_sum);
  EXPECT_EQ(r.value.sched_count, g.sched_count);
  EXPECT_EQ(r.value.reactor_last_seen, g.reactor_last_seen);
  EXPECT_EQ(r.value.notifier_listeners, g.notifier_listeners);
}

// In flight is 0 everywhere: idle processes expose the family as HELP/TYPE only, and the one
// series of the long-poll body is SyncRestServlet, which is excluded.
INSTANTIATE_TEST_SUITE_P(
    Synapse1160, LoadExtractReal,
    ::testing::Values(
        real_golden{"main.txt", 3.18, 1.79615635793e+09, 1.7833788394927979, 591.0, 0.0,
                    0.762917692999963, 426.0, 0.026993274688720703, 0.0},
        real_golden{"room1.txt", 2.0300000000000002, 1.79615636002e+09, 1.2388525009155273, 426.0,
                    0.0, 0.13348727800121196, 157.0, 0.015114068984985352, 0.0},
        real_golden{"client_sync.txt", 1.66, 1.7961563618e+09, 0.9865071773529053, 259.0, 0.0,
                    0.1711306400002286, 101.0, 0.037932395935058594, 0.0},
        real_golden{"client_sync-during-longpoll.txt", 2.2, 1.79615420653e+09, 1.8766467571258545,
                    1702.0, 0.0, 0.28125945699912336, 164.0, 0.013231277465820312, 1.0},
        real_golden{"federation_sender.txt", 1.94, 1.79615636332e+09, 1.1259713172912598, 239.0,
                    0.0, 0.13454315999933897, 90.0, 0.021308422088623047, 0.0}),
    [](const ::testing::TestParamInfo<real_golden>& p) {
      std::string n = p.param.file;
      n = n.substr(0, n.find('.'));
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

TEST(LoadExtract, RealLongPollBodyWithOtherRequestsInFlight) {
  // The real long-poll body with two more series in its in-flight family, where Synapse would put
  // them: only those two count.
  std::string body = read_real("client_sync-during-longpoll.txt");
  const std::string sync_line =
      "synapse_http_server_in_flight_requests_count{method=\"GET\",server_name=\"localhost\","
      "servlet=\"SyncRestServlet\"} 1.0\n";
  const auto at = body.find(sync_line);
  ASSERT_NE(at, std::string::npos);
  body.insert(
      at + sync_line.size(),
      "synapse_http_server_in_flight_requests_count{method=\"PUT\",server_name=\"localhost\","
      "servlet=\"RoomSendEventRestServlet\"} 2.0\n"
      "synapse_http_server_in_flight_requests_count{method=\"GET\",server_name=\"localhost\","
      "servlet=\"EventStreamRestServlet\"} 3.0\n"
      "synapse_http_server_in_flight_requests_count{method=\"POST\",server_name=\"localhost\","
      "servlet=\"KeyQueryServlet\"} 1.0\n");
  auto r = spoa::load::extract(body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.in_flight, 3.0);
}

TEST(LoadExtract, RealIdleBodyWithoutTheInFlightFamilyAtAll) {
  // Absent and HELP/TYPE-only are the same: 0 in flight, and the scrape is good.
  std::string body = read_real("room1.txt");
  const std::string family =
      "# HELP synapse_http_server_in_flight_requests_count \n"
      "# TYPE synapse_http_server_in_flight_requests_count gauge\n";
  const auto at = body.find(family);
  ASSERT_NE(at, std::string::npos);
  body.erase(at, family.size());
  auto r = spoa::load::extract(body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.in_flight, 0.0);
  EXPECT_EQ(r.value.cpu_seconds, 2.0300000000000002);
}

// --- the constructed sample (reference synapse-metrics.md §5) and hand-written shapes ---

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
  EXPECT_TRUE(std::isnan(r.value.notifier_listeners));
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

// The database-threads signal (load::signals "db busy"): working and total threads of the
// database-master pool, exactly as the real bodies carry them; the other pools are not counted.
TEST(LoadExtract, RealBodiesCarryTheDatabaseThreadPool) {
  const std::pair<const char*, double> working[] = {{"main.txt", 0.0},
                                                    {"room1.txt", 1.0},
                                                    {"client_sync.txt", 0.0},
                                                    {"client_sync-during-longpoll.txt", 0.0},
                                                    {"federation_sender.txt", 1.0}};
  for (const auto& [file, busy] : working) {
    auto r = spoa::load::extract(read_real(file));
    ASSERT_TRUE(r.ok) << file << ": " << r.error;
    EXPECT_EQ(r.value.db_threads_working, busy) << file;
    EXPECT_EQ(r.value.db_threads_total, 5.0) << file;
  }
  const std::string body =
      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n"
      "# TYPE synapse_threadpool_working_threads gauge\n"
      "synapse_threadpool_working_threads{name=\"default\"} 7\n"
      "synapse_threadpool_working_threads{name=\"database-master\"} 3\n";
  auto r = spoa::load::extract(body);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value.db_threads_working, 3.0);
  EXPECT_TRUE(std::isnan(r.value.db_threads_total));
}

}  // namespace
