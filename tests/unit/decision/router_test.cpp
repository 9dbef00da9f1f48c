// The decision library's router: route table + placement over one worker index space (config
// workers, scraped or not, pooled or not).

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "config/load.hpp"
#include "decision/router.hpp"
#include "routing/json.hpp"

namespace {

using spoa::decision::router;
using spoa::routing::key_buffer;
using spoa::routing::request;

request req(std::string_view method, std::string_view path) {
  return {method, path, {}, {}, {}};
}

TEST(Router, RoomRequestGoesToARoomWorkerAndStays) {
  router r(spoa::config::default_config());
  key_buffer buf;
  const auto a = r.decide(req("GET", "/_matrix/client/v3/rooms/!abc:example.org/messages"), buf, 1);
  EXPECT_EQ(a.backend, "synapse_room");
  EXPECT_EQ(a.pool, "room");
  EXPECT_EQ(a.key, "!abc:example.org");
  const std::string first(a.server);
  EXPECT_TRUE(first.rfind("room", 0) == 0) << first;
  const auto b = r.decide(
      req("PUT", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t"), buf, 2);
  EXPECT_EQ(b.server, first);
  EXPECT_EQ(b.why, spoa::routing::reason::affinity_hit);
}

TEST(Router, ClassesReachTheirBackends) {
  router r(spoa::config::default_config());
  key_buffer buf;
  EXPECT_EQ(r.decide(req("GET", "/_matrix/client/v3/sync"), buf, 1).server, "client_sync1");
  EXPECT_EQ(r.decide(req("GET", "/_matrix/media/v3/config"), buf, 1).server, "media1");
  EXPECT_EQ(r.decide(req("GET", "/_matrix/client/versions"), buf, 1).server, "main");
  EXPECT_EQ(r.decide(req("PUT", "/_matrix/federation/v1/send/1"), buf, 1).backend,
            "synapse_federation_reader");
}

// Workers without a pool (tasks1, federation senders) sit between routed workers in the
// config; the load view arrives indexed by config worker and must reach the right placement
// worker.
TEST(Router, LoadViewIsMappedByConfigIndex) {
  auto loaded = spoa::config::load_string(R"(
pools:
  room: {backend: synapse_room, balance: affinity, key: room}
  main: {backend: synapse_main, balance: least_loaded}
workers:
  - {name: tasks1}
  - {name: room1, pool: room}
  - {name: sender1}
  - {name: room2, pool: room}
  - {name: main, pool: main}
)",
                                          "test.yaml");
  ASSERT_TRUE(std::holds_alternative<spoa::config::agent_config>(loaded));
  router r(std::get<spoa::config::agent_config>(loaded));
  spoa::routing::load_view view;
  view.workers.resize(5);
  view.workers[3].state = spoa::routing::worker_state::down;  // room2 (config index 3)
  view.workers[3].capacity = 0;
  r.set_load(view);
  key_buffer buf;
  for (int i = 0; i < 200; ++i) {
    const std::string path = "/_matrix/client/v3/rooms/!r" + std::to_string(i) + ":x/messages";
    const auto a = r.decide(req("GET", path), buf, 10 + static_cast<std::uint64_t>(i));
    EXPECT_EQ(a.server, "room1") << path;
    EXPECT_EQ(a.worker_index, 1);
  }
}

TEST(Router, ReconfigureKeepsRoomsAndRejectsBadRoutes) {
  auto cfg = spoa::config::default_config();
  router r(cfg);
  key_buffer buf;
  std::set<std::string> before;
  std::vector<std::string> servers;
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/_matrix/client/v3/rooms/!k" + std::to_string(i) + ":x/state";
    servers.emplace_back(r.decide(req("GET", path), buf, 1 + static_cast<std::uint64_t>(i)).server);
  }
  auto bad = cfg;
  bad.routes.push_back(
      {"broken", "GET", "/_matrix/{room", "room", spoa::routing::key_kind::room, "", "t:1"});
  EXPECT_THROW(r.reconfigure(bad), std::runtime_error);
  cfg.placement.balance_factor = 1.5;
  r.reconfigure(cfg);
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/_matrix/client/v3/rooms/!k" + std::to_string(i) + ":x/state";
    const auto a = r.decide(req("GET", path), buf, 1000 + static_cast<std::uint64_t>(i));
    EXPECT_EQ(a.server, servers[static_cast<std::size_t>(i)]);
    EXPECT_EQ(a.why, spoa::routing::reason::affinity_hit);
  }
}

// Issue 18: every answer names HAProxy's second choice (txn.synapse.server2), and a room whose
// worker goes down moves exactly there.
TEST(Router, EveryRoomAnswerNamesTheSecondChoiceWhereTheRoomMovesOnDown) {
  const auto cfg = spoa::config::default_config();
  router r(cfg);
  key_buffer buf;
  std::vector<std::string> first, second;
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/_matrix/client/v3/rooms/!s" + std::to_string(i) + ":x/messages";
    const auto a = r.decide(req("GET", path), buf, 1);
    ASSERT_TRUE(a.server2.rfind("room", 0) == 0) << a.server2;
    ASSERT_NE(a.server2, a.server);
    first.emplace_back(a.server);
    second.emplace_back(a.server2);
  }
  // Single-worker pools have no second choice.
  EXPECT_EQ(r.decide(req("GET", "/_matrix/client/versions"), buf, 2).server2, "");
  EXPECT_EQ(r.decide(req("GET", "/_matrix/client/v3/sync"), buf, 2).server2, "");

  spoa::routing::load_view view;
  view.workers.resize(cfg.workers.size());
  std::size_t room1 = 0;
  while (cfg.workers[room1].name != "room1")
    ++room1;
  view.workers[room1].state = spoa::routing::worker_state::down;
  view.workers[room1].capacity = 0;
  r.set_load(view, 3);
  int moved = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/_matrix/client/v3/rooms/!s" + std::to_string(i) + ":x/messages";
    const auto a = r.decide(req("GET", path), buf, 4);
    if (first[static_cast<std::size_t>(i)] != "room1") {
      EXPECT_EQ(a.server, first[static_cast<std::size_t>(i)]);
      EXPECT_NE(a.server2, "room1");
      continue;
    }
    ++moved;
    EXPECT_EQ(a.server, second[static_cast<std::size_t>(i)]);
    EXPECT_EQ(a.why, spoa::routing::reason::moved);
  }
  EXPECT_GT(moved, 10);
}

TEST(Router, ExplainIsOneJsonObjectWithTheRule) {
  router r(spoa::config::default_config());
  const auto j = r.explain(req("GET", "/_matrix/client/v3/rooms/!abc:example.org/messages"), 1);
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_EQ(j.find('\n'), std::string::npos);
  EXPECT_NE(j.find("\"rule\":\"room_messages\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"ranking\":["), std::string::npos) << j;
  EXPECT_NE(j.find("\"server2\":\"room"), std::string::npos) << j;
  EXPECT_NE(j.find("\"second\":\"room"), std::string::npos) << j;
}

TEST(Router, JsonEscape) {
  EXPECT_EQ(spoa::routing::json::escape("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001");
}

}  // namespace
