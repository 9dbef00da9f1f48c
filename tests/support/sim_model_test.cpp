// Unit tests of the simulator's pure parts: number formatting, the exposition writer and the
// worker load model. Exact and clock-free: the model takes time as an argument.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "support/exposition.hpp"
#include "support/worker_model.hpp"

namespace spoa::sim {
namespace {

bool has_line(const std::string& body, const std::string& line) {
  return body.find("\n" + line + "\n") != std::string::npos || body.starts_with(line + "\n");
}

TEST(FormatGoFloat, MatchesPrometheusClient) {
  EXPECT_EQ(format_go_float(37.0), "37.0");
  EXPECT_EQ(format_go_float(0.0), "0.0");
  EXPECT_EQ(format_go_float(-0.0), "-0.0");
  EXPECT_EQ(format_go_float(1843.27), "1843.27");
  EXPECT_EQ(format_go_float(0.0031), "0.0031");
  EXPECT_EQ(format_go_float(0.005), "0.005");
  EXPECT_EQ(format_go_float(0.0001), "0.0001");
  EXPECT_EQ(format_go_float(0.00001), "1e-05");
  EXPECT_EQ(format_go_float(1.5e-7), "1.5e-07");
  EXPECT_EQ(format_go_float(123456.0), "123456.0");  // 6 integer digits: still positional
  EXPECT_EQ(format_go_float(1048576.0), "1.048576e+06");
  EXPECT_EQ(format_go_float(1000000.0), "1e+06");
  EXPECT_EQ(format_go_float(5551201.0), "5.551201e+06");
  EXPECT_EQ(format_go_float(412246016.0), "4.12246016e+08");
  EXPECT_EQ(format_go_float(1538985984.0), "1.538985984e+09");
  EXPECT_EQ(format_go_float(1721810000.55), "1.72181000055e+09");
  EXPECT_EQ(format_go_float(12000000000.0), "1.2e+010");
  EXPECT_EQ(format_go_float(1e16), "1e+16");
  EXPECT_EQ(format_go_float(-4122460.0), "-4122460.0");  // only positive values switch
  EXPECT_EQ(format_go_float(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_go_float(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_go_float(std::nan("")), "NaN");
}

TEST(EscapeLabelValue, EscapesBackslashQuoteNewline) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain"), "plain");
}

TEST(ExpositionWriter, EmptyHelpKeepsTrailingSpaceAndLabelsAreSorted) {
  exposition_writer w;
  w.family("synapse_http_server_requests_received_total", "", "counter");
  w.sample("synapse_http_server_requests_received_total",
           {{"servlet", "SyncRestServlet"}, {"method", "GET"}, {"server_name", "example.org"}},
           20311);
  EXPECT_EQ(w.body(),
            "# HELP synapse_http_server_requests_received_total \n"
            "# TYPE synapse_http_server_requests_received_total counter\n"
            "synapse_http_server_requests_received_total{method=\"GET\",server_name=\"example."
            "org\",servlet=\"SyncRestServlet\"} 20311.0\n");
}

TEST(ExpositionWriter, HistogramIsCumulativeThenCountThenSum) {
  histogram h({0.5, 1.0});
  h.observe(0.25);
  h.observe(0.75);
  h.observe(0.75);
  h.observe(3.0);
  exposition_writer w;
  w.histogram_samples("x", {{"server_name", "s"}}, h);
  EXPECT_EQ(w.body(),
            "x_bucket{le=\"0.5\",server_name=\"s\"} 1.0\n"
            "x_bucket{le=\"1.0\",server_name=\"s\"} 3.0\n"
            "x_bucket{le=\"+Inf\",server_name=\"s\"} 4.0\n"
            "x_count{server_name=\"s\"} 4.0\n"
            "x_sum{server_name=\"s\"} 4.75\n");
}

TEST(Histogram, BoundaryValueFallsInItsBucket) {
  histogram h({0.5, 1.0});
  h.observe(0.5);  // le is "less than or equal"
  EXPECT_EQ(h.counts()[0], 1u);
  h.add_counts({1, 2}, 1.0);  // wrong size: ignored
  EXPECT_EQ(h.count(), 1u);
}

TEST(Classify, ServletsAndTags) {
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/rooms/!r:x/messages?dir=b"),
            "RoomMessageListRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/sync?since=s1"), "SyncRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1"),
            "RoomSendEventRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/sendToDevice/m.x/t1"),
            "SendToDeviceRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/federation/v1/send/txn1"), "FederationSendServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/federation/v2/send_join/!r:x/$e"),
            "FederationV2SendJoinServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/media/v3/download/x/y"), "DownloadResource");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/events?from=s1"), "EventStreamRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/rooms/!r:x/state"), "RoomStateRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/rooms/!r:x/state/m.room.name/"),
            "RoomStateEventRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/rooms/!r:x/join"), "RoomMembershipRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/join/!r:x"), "JoinRoomAliasServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/createRoom"), "RoomCreateRestServlet");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v1/media/thumbnail/x/y"), "ThumbnailResource");
  // Unclaimed paths: the resource's class name, as real Synapse labels its 404s.
  EXPECT_EQ(servlet_for_target("/_matrix/client/v3/nonexistent"), "ClientRestResource");
  EXPECT_EQ(servlet_for_target("/_matrix/client/v1/media/config"), "ClientRestResource");
  EXPECT_EQ(servlet_for_target("/_matrix/federation/v1/version"), "TransportLayerServer");
  EXPECT_EQ(servlet_for_target("/_matrix/media/v3/config"), "MediaRepositoryResource");
  EXPECT_EQ(servlet_for_target("/anything"), "JsonResource");
  EXPECT_EQ(servlet_for_target(""), "JsonResource");
  EXPECT_EQ(tag_for("SyncRestServlet", "/_matrix/client/v3/sync?timeout=0&since=s1"),
            "sync_v2:incremental_sync");
  EXPECT_EQ(tag_for("SyncRestServlet", "/_matrix/client/v3/sync"), "sync_v2:initial_sync");
  EXPECT_EQ(tag_for("SyncRestServlet", "/_matrix/client/v3/sync?full_state=true"),
            "sync_v2:initial_sync");
  EXPECT_EQ(tag_for("SyncRestServlet", "/_matrix/client/v3/sync?since=s1&full_state=true"),
            "sync_v2:full_state_sync");
  EXPECT_EQ(tag_for("JsonResource", "/x?since=1"), "");
  EXPECT_EQ(method_label("GET"), "GET");
  EXPECT_EQ(method_label("BREW"), "OTHER");
}

TEST(Modes, ParseAndName) {
  for (auto name : {"normal", "slow", "hung", "down", "garbage", "huge"}) {
    auto m = parse_mode(name);
    ASSERT_TRUE(m.has_value()) << name;
    EXPECT_EQ(mode_name(*m), name);
  }
  EXPECT_FALSE(parse_mode("fast").has_value());
  EXPECT_FALSE(parse_mode("").has_value());
}

model_params params(unsigned cores) {
  model_params p;
  p.name = "room1";
  p.server_name = "example.org";
  p.cpu_per_request = 0.002;
  p.cores = cores;
  p.idle_cpu_rate = 0.0;
  return p;
}

TEST(WorkerModel, OneCoreQueuesFifo) {
  worker_model m(params(1), 10.0, 1721810000.0);
  auto a = m.admit("GET", "/_matrix/client/v3/rooms/!r:x/messages", 10.0);
  auto b = m.admit("GET", "/_matrix/client/v3/rooms/!r:x/messages", 10.0);
  EXPECT_DOUBLE_EQ(a.start, 10.0);
  EXPECT_DOUBLE_EQ(a.finish, 10.002);
  EXPECT_DOUBLE_EQ(b.start, 10.002);
  EXPECT_DOUBLE_EQ(b.finish, 10.004);
  EXPECT_EQ(m.stats().in_flight, 2);
  EXPECT_EQ(m.stats().requests, 2u);
  // CPU is exact at any instant: 3 ms of the 4 ms backlog have run at t = 10.003.
  EXPECT_NEAR(m.simulated_cpu(10.003), 0.003, 1e-12);
  EXPECT_NEAR(m.simulated_cpu(11.0), 0.004, 1e-12);
  m.complete(a, 200, 10.002);
  m.complete(b, 200, 10.004);
  EXPECT_EQ(m.stats().in_flight, 0);
}

TEST(WorkerModel, SlowModeMultipliesCost) {
  worker_model m(params(1), 0.0, 0.0);
  m.set_mode(worker_mode::slow, 3.0);
  auto t = m.admit("PUT", "/x", 0.0);
  EXPECT_DOUBLE_EQ(t.cost, 0.006);
  m.set_mode(worker_mode::normal, 3.0);
  EXPECT_DOUBLE_EQ(m.stats().factor, 1.0);
  EXPECT_DOUBLE_EQ(m.admit("PUT", "/x", 0.0).cost, 0.002);
}

TEST(WorkerModel, UnlimitedCoresDoNotQueue) {
  worker_model m(params(0), 0.0, 0.0);
  auto a = m.admit("GET", "/x", 0.0);
  auto b = m.admit("GET", "/x", 0.0);
  EXPECT_DOUBLE_EQ(b.finish, 0.002);
  EXPECT_DOUBLE_EQ(m.simulated_cpu(0.001), 0.0);  // credited when done
  m.complete(a, 200, 0.002);
  m.abandon(b, 0.001);  // dropped half-way: half the cost was spent
  EXPECT_NEAR(m.simulated_cpu(1.0), 0.003, 1e-12);
}

TEST(WorkerModel, DropBacklogForgetsFutureWork) {
  worker_model m(params(1), 0.0, 0.0);
  for (int i = 0; i < 10; ++i)
    m.admit("GET", "/x", 0.0);
  m.drop_backlog(0.005);
  EXPECT_NEAR(m.simulated_cpu(1.0), 0.005, 1e-12);
  auto t = m.admit("GET", "/x", 0.005);
  EXPECT_DOUBLE_EQ(t.start, 0.005);
}

TEST(WorkerModel, InFlightIsALaterGauge) {
  worker_model m(params(1), 0.0, 0.0);
  auto t = m.admit("GET", "/_matrix/client/v3/rooms/!r:x/messages", 0.0);
  std::string during = m.scrape(0.001, 12);
  EXPECT_TRUE(has_line(during,
                       "synapse_http_server_in_flight_requests_count{method=\"GET\",server_name="
                       "\"example.org\",servlet=\"RoomMessageListRestServlet\"} 1.0"))
      << during;
  m.complete(t, 200, 0.002);
  std::string after = m.scrape(0.003, 12);
  EXPECT_TRUE(has_line(after, "# HELP synapse_http_server_in_flight_requests_count "));
  EXPECT_EQ(after.find("synapse_http_server_in_flight_requests_count{"), std::string::npos);
  EXPECT_TRUE(has_line(after,
                       "synapse_http_server_requests_received_total{method=\"GET\",server_name="
                       "\"example.org\",servlet=\"RoomMessageListRestServlet\"} 1.0"));
  EXPECT_TRUE(has_line(after,
                       "synapse_http_server_responses_total{code=\"200\",method=\"GET\","
                       "server_name=\"example.org\"} 1.0"));
  EXPECT_TRUE(has_line(after,
                       "synapse_http_server_response_time_seconds_bucket{code=\"200\",le=\"0.005\","
                       "method=\"GET\",server_name=\"example.org\",servlet="
                       "\"RoomMessageListRestServlet\",tag=\"\"} 1.0"));
}

TEST(WorkerModel, ProcessMetrics) {
  model_params p = params(1);
  p.idle_cpu_rate = 0.01;
  worker_model m(p, 0.0, 1721810000.554);
  std::string body = m.scrape(100.0, 17);
  EXPECT_TRUE(has_line(body, "process_start_time_seconds 1.72181000055e+09"));
  EXPECT_TRUE(has_line(body, "process_cpu_seconds_total 1.0"));  // idle baseline only
  EXPECT_TRUE(has_line(body, "process_open_fds 17.0"));
  EXPECT_TRUE(has_line(body, "# TYPE process_cpu_seconds_total counter"));
  EXPECT_TRUE(has_line(body,
                       "synapse_build_info{osversion=\"Linux 6.1.0\",pythonversion=\"CPython "
                       "3.14.10\",rustcversion=\"rustc 1.95.0\",version=\"1.160.0\"} 1.0"));
  EXPECT_TRUE(has_line(body, "process_cpu_user_seconds_total 0.9"));
  EXPECT_TRUE(has_line(body, "process_cpu_system_seconds_total 0.1"));
  EXPECT_TRUE(body.ends_with("\n"));
}

TEST(WorkerModel, TickDurationRisesWithUtilisation) {
  EXPECT_DOUBLE_EQ(worker_model::tick_duration(0.0), 0.001);
  EXPECT_NEAR(worker_model::tick_duration(0.5), 0.004, 1e-12);
  EXPECT_NEAR(worker_model::tick_duration(0.9), 0.1, 1e-9);
  EXPECT_DOUBLE_EQ(worker_model::tick_duration(1.0), 5.0);
  EXPECT_DOUBLE_EQ(worker_model::tick_duration(7.0), 5.0);
  EXPECT_DOUBLE_EQ(worker_model::tick_duration(-1.0), 0.001);
}

TEST(WorkerModel, IdleWorkerTicksAHundredTimesASecond) {
  worker_model m(params(1), 0.0, 0.0);
  std::string body = m.scrape(2.0, 10);
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_tick_time_count 200.0")) << body;
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_tick_time_bucket{le=\"+Inf\"} 200.0"));
  // Exponential with mean 1 ms: floor(200 (1 - e^-1)) = 126 ticks within 1 ms.
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_tick_time_bucket{le=\"0.001\"} 126.0"));
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_tick_time_sum 0.2"));
}

TEST(WorkerModel, SaturatedWorkerShowsLongTicks) {
  worker_model m(params(1), 0.0, 0.0);
  // 1000 requests of 2 ms arriving at once: the core is busy for the whole 2 s window.
  for (int i = 0; i < 1000; ++i)
    m.admit("GET", "/x", 0.0);
  std::string body = m.scrape(2.0, 10);
  // u = 1 -> 5 s ticks at 0.2 per second: 0 whole ticks in 2 s, reactor last seen 2 s ago.
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_tick_time_count 0.0")) << body;
  EXPECT_TRUE(has_line(body, "python_twisted_reactor_last_seen 2.0"));
  EXPECT_TRUE(has_line(body, "process_cpu_seconds_total 2.0"));
  EXPECT_TRUE(has_line(body,
                       "synapse_http_server_in_flight_requests_count{method=\"GET\",server_name="
                       "\"example.org\",servlet=\"JsonResource\"} 1000.0"));
  EXPECT_TRUE(has_line(body,
                       "synapse_threadpool_working_threads{name=\"database-master\",server_name="
                       "\"example.org\"} 10.0"));
}

}  // namespace
}  // namespace spoa::sim
