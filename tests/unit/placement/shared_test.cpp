// The shared affinity store's pure parts: what placement records for the store (claims and
// moves, nothing for a hit), adopting another agent's placement, the used-since walk of the
// batched TTL refresh, and the wire names and messages (exact, and hostile input refused).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "routing/placement.hpp"
#include "routing/shared_wire.hpp"

namespace spoa::routing {
namespace {

constexpr std::uint64_t t0 = 1'000'000;

placement make(int n) {
  std::vector<worker_spec> ws;
  for (int i = 0; i < n; ++i) {
    worker_spec w;
    w.name = w.server = "room" + std::to_string(i + 1);
    w.pool = 0;
    ws.push_back(w);
  }
  worker_spec m;
  m.name = m.server = "main";
  m.pool = 1;
  ws.push_back(m);
  placement_options o;
  o.hash_key = "shared-test-key";
  o.max_moves_per_second = 1000;
  return placement({{"room", true}, {"main", false}}, ws, o);
}

TEST(SharedPlacement, RecordsAClaimForANewKeyAndNothingForAHit) {
  placement p = make(4);
  p.record_changes(true);
  const decision d = p.place(0, "!a:x", t0);
  ASSERT_EQ(p.changes().size(), 1u);
  const auto c = p.changes()[0];
  EXPECT_EQ(c.table_hash, p.table_hash_of(0, "!a:x"));
  EXPECT_EQ(c.pool, 0);
  EXPECT_EQ(c.worker, d.worker);
  EXPECT_EQ(c.old_worker, affinity_table::no_worker);
  EXPECT_EQ(c.cause, move_cause::none);
  p.clear_changes();
  for (int i = 0; i < 100; ++i)
    p.place(0, "!a:x", t0 + 1 + i);
  EXPECT_TRUE(p.changes().empty());
  p.place(1, "", t0 + 200);  // unkeyed: nothing to share
  EXPECT_TRUE(p.changes().empty());
}

TEST(SharedPlacement, RecordsAMoveWithItsOldWorkerAndCause) {
  placement p = make(4);
  p.record_changes(true);
  const int first = p.place(0, "!a:x", t0).worker;
  p.clear_changes();
  p.set_drain(p.workers()[static_cast<std::size_t>(first)].name, true);
  const int moved = p.place(0, "!a:x", t0 + 1000).worker;
  ASSERT_NE(moved, first);
  ASSERT_EQ(p.changes().size(), 1u);
  EXPECT_EQ(p.changes()[0].old_worker, first);
  EXPECT_EQ(p.changes()[0].worker, moved);
  EXPECT_EQ(p.changes()[0].cause, move_cause::drain);
}

TEST(SharedPlacement, NothingRecordedWhenOff) {
  placement p = make(4);
  p.place(0, "!a:x", t0);
  EXPECT_TRUE(p.changes().empty());
}

TEST(SharedPlacement, AdoptInsertsOrMovesAndTheNextRequestFollows) {
  placement p = make(4);
  const std::uint64_t h = p.table_hash_of(0, "!a:x");
  EXPECT_TRUE(p.adopt(0, h, 2, t0));
  EXPECT_EQ(p.place(0, "!a:x", t0 + 1).worker, 2);
  EXPECT_FALSE(p.adopt(0, h, 2, t0 + 2));  // already there
  EXPECT_TRUE(p.adopt(0, h, 3, t0 + 3));
  EXPECT_EQ(p.place(0, "!a:x", t0 + 4).worker, 3);
  EXPECT_EQ(p.counters().moved(move_cause::drain), 0u);  // not this agent's own move
}

TEST(SharedPlacement, AdoptRefusesAWorkerOfAnotherPoolOrUnknown) {
  placement p = make(4);
  const std::uint64_t h = p.table_hash_of(0, "!a:x");
  EXPECT_FALSE(p.adopt(0, h, 4, t0));  // main is in pool 1
  EXPECT_FALSE(p.adopt(0, h, 99, t0));
  EXPECT_FALSE(p.adopt(0, h, -1, t0));
  EXPECT_FALSE(p.adopt(7, h, 0, t0));
  EXPECT_EQ(p.table().size(), 0u);
}

TEST(SharedPlacement, NamesAndIndices) {
  placement p = make(4);
  EXPECT_EQ(p.pool_index("room"), 0);
  EXPECT_EQ(p.pool_index("nope"), -1);
  EXPECT_EQ(p.worker_index("room3"), 2);
  EXPECT_EQ(p.worker_index(""), -1);
  EXPECT_EQ(p.pool_of(4), 1);
  EXPECT_EQ(p.pool_of(5), -1);
}

TEST(SharedAffinityTable, UsedSinceIsExactlyTheKeysUsedSince) {
  affinity_table t(1000, 0, 60);
  const std::uint64_t base = 10'000'000;  // ms
  for (std::uint64_t i = 0; i < 100; ++i)
    t.insert(i + 1, 0, 0, base);
  // At base + 120 s: touch keys 1..10 (relinked: older than the resolution), then keys 11..20
  // 30 s later are touched again without relinking.
  for (std::uint64_t i = 1; i <= 20; ++i)
    t.find(i, base + 120'000);
  for (std::uint64_t i = 11; i <= 20; ++i)
    t.find(i, base + 150'000);
  std::set<std::uint64_t> seen;
  t.for_each_used_since(base + 140'000,
                        [&](const affinity_table::entry& e) { seen.insert(e.hash); });
  std::set<std::uint64_t> want;
  for (std::uint64_t i = 11; i <= 20; ++i)
    want.insert(i);
  EXPECT_EQ(seen, want);
  seen.clear();
  t.for_each_used_since(base + 100'000,
                        [&](const affinity_table::entry& e) { seen.insert(e.hash); });
  EXPECT_EQ(seen.size(), 20u);
}

namespace wire = shared_wire;

TEST(SharedWire, KeyAndMessageAreExact) {
  EXPECT_EQ(wire::key("synapse-spoa:", "room", 0x0123456789abcdefULL),
            "synapse-spoa:a:room:0123456789abcdef");
  EXPECT_EQ(wire::channel("p:"), "p:moves");
  EXPECT_EQ(wire::format_move("a1", "room", 0xffULL, "room2"), "m1 a1 room 00000000000000ff room2");
  const auto m = wire::parse_move("m1 a1 room 00000000000000ff room2");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->agent, "a1");
  EXPECT_EQ(m->pool, "room");
  EXPECT_EQ(m->table_hash, 0xffULL);
  EXPECT_EQ(m->worker, "room2");
  const auto k = wire::parse_key("synapse-spoa:", "synapse-spoa:a:room:0123456789abcdef");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->pool, "room");
  EXPECT_EQ(k->table_hash, 0x0123456789abcdefULL);
}

TEST(SharedWire, HostileMessagesAreRefused) {
  for (const char* bad : {"", "m1", "m2 a room 00000000000000ff w", "m1 a room 00000000000000ff",
                          "m1 a room 00000000000000ff w extra", "m1 a room 00000000000000FF w",
                          "m1 a room 0000000000000ff w", "m1 a room 00000000000000fg w",
                          "m1  room 00000000000000ff w", "m1 a room 00000000000000ff w ",
                          "m1 a r\x01m 00000000000000ff w"}) {
    EXPECT_FALSE(wire::parse_move(bad)) << bad;
  }
  const std::string longname(wire::max_name + 1, 'x');
  EXPECT_FALSE(wire::parse_move("m1 " + longname + " room 00000000000000ff w"));
  EXPECT_FALSE(wire::parse_move(std::string(wire::max_message + 1, 'm')));
  EXPECT_FALSE(wire::parse_key("p:", "q:a:room:00000000000000ff"));
  EXPECT_FALSE(wire::parse_key("p:", "p:a:room:00000000000000f"));
  EXPECT_FALSE(wire::parse_key("p:", "p:b:room:00000000000000ff"));
  EXPECT_FALSE(wire::valid_name(""));
  EXPECT_FALSE(wire::valid_name("a b"));
  EXPECT_TRUE(wire::valid_name("room_1.x-y"));
}

TEST(SharedWire, LoadReportRoundTripsInThousandths) {
  const std::vector<std::pair<std::string_view, double>> rates{
      {"room1", 12.3456}, {"room2", 0.0004}, {"room3", 0.0}, {"bad name", 5.0}, {"main", 2e15}};
  const std::string m = wire::format_load("agent-a", rates);
  // room2 rounds to 0 and room3 is 0: left out; so is a name that is not valid; the last is capped.
  EXPECT_EQ(m, "l1 agent-a room1 12346 main 1000000000000");
  std::vector<wire::load_entry> out;
  out.reserve(wire::max_load_entries);
  const auto agent = wire::parse_load(m, out);
  ASSERT_TRUE(agent);
  EXPECT_EQ(*agent, "agent-a");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].worker, "room1");
  EXPECT_EQ(out[0].mrps, 12346u);
  EXPECT_EQ(out[1].mrps, wire::max_mrps);
  EXPECT_TRUE(wire::parse_load("l1 a", out));  // an agent that sends nothing yet
  EXPECT_TRUE(out.empty());
}

TEST(SharedWire, HostileLoadReportsAreRefused) {
  std::vector<wire::load_entry> out;
  out.reserve(wire::max_load_entries);
  for (const char* bad :
       {"", "l1", "l2 a w 1", "l1 a w", "l1 a w 1 x", "l1 a w -1", "l1 a w +1", "l1 a w 1.5",
        "l1 a w 0x1", "l1 a w 1 ", "l1  w 1", "l1 a  1", "l1 a w 1000000000001",
        "l1 a w 99999999999999999999", "m1 a room 00000000000000ff w"}) {
    EXPECT_FALSE(wire::parse_load(bad, out)) << bad;
  }
  std::string many = "l1 a";
  for (std::size_t i = 0; i <= wire::max_load_entries; ++i)
    many += " w 1";
  EXPECT_FALSE(wire::parse_load(many, out));  // one pair too many
  std::vector<wire::load_entry> unreserved;   // a caller that did not reserve: refused, no growth
  EXPECT_FALSE(wire::parse_load("l1 a w 1", unreserved));
  EXPECT_EQ(unreserved.capacity(), 0u);
}

TEST(SharedPlacement, PeerRatesCountTowardsTheBound) {
  // Two room workers; this agent alone has sent 100 requests to each, so both are equal. Peers
  // report 1000 requests per second to room1: the sum over agents makes it the busier one, and
  // new keys that rank room1 first spill to room2.
  const std::uint64_t t = t0 + 200;
  const auto seeded = [] {
    placement p = make(2);
    for (int i = 0; i < 200; ++i)
      p.place(0, "!seed" + std::to_string(i) + ":x", t0 + static_cast<std::uint64_t>(i));
    return p;
  };
  placement p = seeded();
  const double own1 = p.own_rate(0, t), own2 = p.own_rate(1, t);
  ASSERT_GT(own1, 0);
  ASSERT_GT(own2, 0);
  int first_room1 = 0;
  auto count = [&](bool peers) {
    placement q = seeded();
    if (peers) q.set_peer_rates({1000.0, 0.0}, t);
    int to2 = 0;
    for (int i = 0; i < 400; ++i) {
      const std::string k = "!fresh" + std::to_string(i) + ":x";
      const plan pl = q.decide(0, k, t);
      if (pl.ranking.empty() || pl.ranking[0].worker != 0) continue;
      if (!peers) ++first_room1;
      if (pl.answer.worker == 1) ++to2;
    }
    return to2;
  };
  EXPECT_EQ(count(false), 0);  // equal load: every key takes its first choice
  const int spilled = count(true);
  EXPECT_GT(first_room1, 100);
  EXPECT_EQ(spilled, first_room1);  // every key that ranks room1 first goes to room2
  // The peers' part shows in the figures, and own_rate leaves it out.
  placement& q = p;
  q.set_peer_rates({1000.0}, t);
  EXPECT_NEAR(q.figures(0).peer_load * q.rate_scale(t), 1000.0, 1e-6);
  EXPECT_DOUBLE_EQ(q.own_rate(0, t), own1);
  EXPECT_DOUBLE_EQ(q.figures(1).peer_load, 0.0);
  // It decays like the own rate: one half-life later (10 s) it is worth half.
  EXPECT_NEAR(q.figures(0).peer_load * q.rate_scale(t + 10'000), 500.0, 1e-6);
  // Garbage in: negative, NaN and infinite rates count as 0.
  q.set_peer_rates({-5.0, std::nan("")}, t);
  EXPECT_DOUBLE_EQ(q.figures(0).peer_load, 0.0);
  EXPECT_DOUBLE_EQ(q.figures(1).peer_load, 0.0);
  q.set_peer_rates({std::numeric_limits<double>::infinity()}, t);
  EXPECT_DOUBLE_EQ(q.figures(0).peer_load, 0.0);
}

}  // namespace
}  // namespace spoa::routing
