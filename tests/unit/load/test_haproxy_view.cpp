#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "load/haproxy_view.hpp"
#include "load/model.hpp"

namespace {

using spoa::load::haproxy_server_ref;
using spoa::load::haproxy_state;
using spoa::load::parse_haproxy_servers;
using spoa::routing::worker_state;

// The shape of HAProxy 2.6.12's exporter (captured from the repo's haproxy.cfg): one series per
// state, the current one at 1.
std::string server(const std::string& proxy, const std::string& name, const std::string& now) {
  std::string out;
  for (const char* st : {"DOWN", "UP", "MAINT", "DRAIN", "NOLB"})
    out += "haproxy_server_status{proxy=\"" + proxy + "\",server=\"" + name + "\",state=\"" + st +
           "\"} " + (now == st ? "1" : "0") + "\n";
  return out;
}

std::string body(const std::string& room1, const std::string& room2) {
  return "# HELP haproxy_server_status Current status of the service, per state label value.\n"
         "# TYPE haproxy_server_status gauge\n" +
         server("synapse_room", "room1", room1) + server("synapse_room", "room2", room2) +
         server("other_backend", "room1", "MAINT") +
         "# HELP haproxy_server_check_status Status of last health check.\n"
         "# TYPE haproxy_server_check_status gauge\n"
         "haproxy_server_check_status{proxy=\"synapse_room\",server=\"room1\",state=\"L7OK\"} 1\n";
}

const std::vector<haproxy_server_ref> refs{{"synapse_room", "room1"},
                                           {"synapse_room", "room2"},
                                           {"", ""},  // a federation sender: not in HAProxy
                                           {"synapse_room", "room9"}};

TEST(HaproxyView, StatesByBackendAndServer) {
  const auto r = parse_haproxy_servers(body("DRAIN", "UP"), refs);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.states.size(), refs.size());
  EXPECT_EQ(r.states[0], haproxy_state::drain);  // the other backend's MAINT room1 is not ours
  EXPECT_EQ(r.states[1], haproxy_state::up);
  EXPECT_EQ(r.states[2], haproxy_state::unknown);
  EXPECT_EQ(r.states[3], haproxy_state::unknown);  // no series
  EXPECT_EQ(parse_haproxy_servers(body("MAINT", "NOLB"), refs).states[0], haproxy_state::maint);
  EXPECT_EQ(parse_haproxy_servers(body("MAINT", "NOLB"), refs).states[1], haproxy_state::drain);
  EXPECT_EQ(parse_haproxy_servers(body("DOWN", "UP"), refs).states[0], haproxy_state::down);
}

TEST(HaproxyView, PrecedenceWhenSeveralStatesAreSet) {
  // A hand-written or future exporter with two states at 1: the strongest wins.
  const std::string b =
      "haproxy_server_status{proxy=\"synapse_room\",server=\"room1\",state=\"UP\"} 1\n"
      "haproxy_server_status{proxy=\"synapse_room\",server=\"room1\",state=\"DRAIN\"} 1\n"
      "haproxy_server_status{proxy=\"synapse_room\",server=\"room2\",state=\"DOWN\"} 1\n"
      "haproxy_server_status{proxy=\"synapse_room\",server=\"room2\",state=\"MAINT\"} 1\n";
  const auto r = parse_haproxy_servers(b, refs);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.states[0], haproxy_state::drain);
  EXPECT_EQ(r.states[1], haproxy_state::maint);
}

TEST(HaproxyView, HostileOrForeignBodiesAreErrors) {
  auto bad = parse_haproxy_servers("haproxy_server_status{proxy=\"x\" 1\n", refs);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error.rfind("line 1:", 0), 0u) << bad.error;
  for (const auto s : bad.states)
    EXPECT_EQ(s, haproxy_state::unknown);
  const auto synapse = parse_haproxy_servers("process_cpu_seconds_total 12\n", refs);
  EXPECT_FALSE(synapse.ok);
  EXPECT_EQ(synapse.error,
            "no haproxy_server_status series (is this HAProxy's prometheus-exporter?)");
  EXPECT_FALSE(parse_haproxy_servers(std::string(70 * 1024, 'a') + " 1\n", refs).ok);
}

TEST(HaproxyView, ModelMakesMaintAndDownDownAndDrainADrainWhileFresh) {
  spoa::load::options o;
  o.stale_after = std::chrono::milliseconds(10'000);
  spoa::load::model m(o, std::vector<std::string>{"room1", "room2", "sender", "room9"});
  m.set_haproxy_servers(refs);
  std::vector<std::string> changes;
  m.on_haproxy(body("DRAIN", "MAINT"), 1000);
  auto v = m.publish(1000, &changes);
  EXPECT_TRUE(v->workers[0].drain);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);  // no scrape of its own yet
  EXPECT_FALSE(v->workers[1].drain);
  EXPECT_EQ(v->workers[1].state, worker_state::down);
  EXPECT_EQ(m.haproxy(0), haproxy_state::drain);
  const std::vector<std::string> want{"room1: HAProxy unknown -> DRAIN",
                                      "room2: HAProxy unknown -> MAINT",
                                      "room2: unknown -> down (HAProxy reports it MAINT)"};
  EXPECT_EQ(changes, want);
  // Ready again.
  changes.clear();
  m.on_haproxy(body("UP", "UP"), 2000);
  v = m.publish(2000, &changes);
  EXPECT_FALSE(v->workers[0].drain);
  EXPECT_EQ(v->workers[1].state, worker_state::unknown);
  // A failed HAProxy scrape keeps the last view until stale_after, then it no longer counts.
  m.on_haproxy(body("DOWN", "UP"), 3000);
  m.on_haproxy_failure("HAProxy metrics: connect: Connection refused", 4000);
  EXPECT_EQ(m.publish(12'999)->workers[0].state, worker_state::down);
  EXPECT_EQ(m.publish(13'001)->workers[0].state, worker_state::unknown);
  EXPECT_EQ(m.haproxy_status().failed, 1u);
  EXPECT_EQ(m.haproxy_status().ok, 3u);
  // A bad body is a failure and changes nothing.
  m.on_haproxy("garbage{", 14'000);
  EXPECT_EQ(m.haproxy_status().failed, 2u);
  EXPECT_EQ(m.haproxy(0), haproxy_state::unknown);
}

}  // namespace
