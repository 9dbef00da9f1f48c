// Placement: exact, deterministic scenarios driven by an explicit clock (now_ms) and injected
// load views. Keys are "!room<i>:example.org".
#include "routing/placement.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routing/rendezvous.hpp"

namespace spoa::routing {
namespace {

constexpr std::uint64_t t0 = 1'000'000;  // a steady-clock-like start, not 0

std::string room(int i) {
  return "!room" + std::to_string(i) + ":example.org";
}

std::vector<worker_spec> room_workers(int n, std::vector<double> weights = {}) {
  std::vector<worker_spec> ws;
  for (int i = 0; i < n; ++i) {
    worker_spec w;
    w.name = "room" + std::to_string(i + 1);
    w.server = w.name;
    w.pool = 0;
    if (static_cast<std::size_t>(i) < weights.size())
      w.weight = weights[static_cast<std::size_t>(i)];
    ws.push_back(w);
  }
  return ws;
}

placement_options test_options() {
  placement_options o;
  o.hash_key = "placement-test-key";
  return o;
}

placement make(int n, placement_options o = test_options(), std::vector<double> weights = {}) {
  return placement({{"room", true}, {"main", false}}, room_workers(n, weights), o);
}

std::shared_ptr<const load_view> view(std::vector<worker_load> w) {
  auto v = std::make_shared<load_view>();
  v->workers = std::move(w);
  return v;
}

// The pure rendezvous ranking of a key over a placement's pool 0, for expectations.
std::vector<int> ranking(const placement& p, std::string_view key) {
  const sip_key k = derive_sip_key(p.options().hash_key);
  std::vector<rendezvous_node> nodes;
  std::vector<int> index;
  for (std::size_t i = 0; i < p.workers().size(); ++i) {
    if (p.workers()[i].pool != 0) continue;
    nodes.push_back(
        {worker_seed(k, p.workers()[i].name), p.workers()[i].weight, p.workers()[i].name});
    index.push_back(static_cast<int>(i));
  }
  std::vector<int> order(nodes.size());
  rendezvous_rank(p.key_hash(key), nodes, order);
  for (int& o : order)
    o = index[static_cast<std::size_t>(o)];
  return order;
}

TEST(Placement, KeyHashIsTheKeyedSiphash) {
  const placement p = make(4);
  EXPECT_EQ(p.key_hash("!a:b"), siphash24(derive_sip_key("placement-test-key"), "!a:b"));
}

TEST(Placement, FirstKeyGoesToItsFirstRankedWorkerAndStays) {
  placement p = make(4);
  const decision d = p.place(0, room(1), t0);
  EXPECT_EQ(d.worker, ranking(p, room(1))[0]);
  EXPECT_EQ(d.why, reason::new_key);
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.key_hash, p.key_hash(room(1)));
  for (int i = 1; i <= 5; ++i) {
    const decision again = p.place(0, room(1), t0 + static_cast<std::uint64_t>(i) * 1000);
    EXPECT_EQ(again.worker, d.worker);
    EXPECT_EQ(again.why, reason::affinity_hit);
    EXPECT_EQ(again.rank, 0);
  }
  EXPECT_EQ(p.counters().decisions[static_cast<int>(reason::affinity_hit)], 5u);
  EXPECT_EQ(p.counters().entries, 1u);
}

TEST(Placement, HundredThousandKeysOverFourEqualWorkersWithinThreePercent) {
  placement p = make(4);
  std::vector<int> counts(4);
  for (int i = 0; i < 100'000; ++i)
    ++counts[static_cast<std::size_t>(
        p.place(0, room(i), t0 + static_cast<std::uint64_t>(i / 100)).worker)];
  for (int c : counts) {
    EXPECT_GE(c, 25'000 * 0.97);
    EXPECT_LE(c, 25'000 * 1.03);
  }
}

TEST(Placement, WeightsOneTwoThreeWithinThreePercent) {
  placement p = make(3, test_options(), {1, 2, 3});
  std::vector<int> counts(3);
  for (int i = 0; i < 100'000; ++i)
    ++counts[static_cast<std::size_t>(
        p.place(0, room(i), t0 + static_cast<std::uint64_t>(i / 100)).worker)];
  for (std::size_t w = 0; w < 3; ++w) {
    const double expected = 100'000.0 * static_cast<double>(w + 1) / 6.0;
    EXPECT_GE(counts[w], expected * 0.97) << w;
    EXPECT_LE(counts[w], expected * 1.03) << w;
  }
}

TEST(Placement, WithoutLoadPressureNewKeysFollowTheRendezvousRanking) {
  placement_options o = test_options();
  o.balance_factor = 1e9;  // bound never binds
  placement p = make(5, o);
  for (int i = 0; i < 10'000; ++i) {
    const decision d = p.place(0, room(i), t0);
    ASSERT_EQ(d.worker, ranking(p, room(i))[0]);
    ASSERT_EQ(d.why, reason::new_key);
  }
}

TEST(Placement, BoundedLoadSpillsAKeyWhoseFirstChoiceIsOverTheBound) {
  placement p = make(4);
  // Hammer one unkeyed... no: load room1 through many requests for keys it owns.
  const int target = 0;
  int placed = 0;
  for (int i = 0; placed < 50; ++i) {
    if (ranking(p, room(i))[0] != target) continue;
    for (int r = 0; r < 20; ++r)
      p.place(0, room(i), t0);  // 1 new + 19 hits on room1
    ++placed;
  }
  // room1 now carries 1000 requests, the others none: a fresh key ranked first on room1 spills.
  for (int i = 100'000;; ++i) {
    const auto order = ranking(p, room(i));
    if (order[0] != target) continue;
    const decision d = p.place(0, room(i), t0);
    EXPECT_EQ(d.why, reason::spill);
    EXPECT_EQ(d.worker, order[1]);
    EXPECT_EQ(d.rank, 1);
    break;
  }
}

TEST(Placement, LowCapacityWorkerTakesNoNewKeysWhileItsKeysStay) {
  placement p = make(4);
  std::vector<int> first(10'000);
  for (int i = 0; i < 10'000; ++i)
    first[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  p.set_load(view({{worker_state::healthy, 0.05},
                   {worker_state::healthy, 1},
                   {worker_state::healthy, 1},
                   {worker_state::healthy, 1}}));
  int on_low = 0;
  for (int i = 10'000; i < 20'000; ++i)
    on_low += p.place(0, room(i), t0 + 1).worker == 0;
  EXPECT_LT(on_low, 100);  // its fair share would be 0.05 / 3.05 of 10000 = 164 at most
  for (int i = 0; i < 10'000; ++i) {
    const decision d = p.place(0, room(i), t0 + 2);
    ASSERT_EQ(d.worker, first[static_cast<std::size_t>(i)]);
    ASSERT_EQ(d.why, reason::affinity_hit);
  }
}

TEST(Placement, ZeroCapacityAndHotWorkersTakeNoNewKeys) {
  placement p = make(3);
  p.set_load(
      view({{worker_state::healthy, 0}, {worker_state::hot, 1}, {worker_state::healthy, 1}}));
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(p.place(0, room(i), t0).worker, 2);
  // When every usable worker is hot, hot workers take keys again.
  p.set_load(view({{worker_state::healthy, 0}, {worker_state::hot, 1}, {worker_state::down, 1}}));
  EXPECT_EQ(p.place(0, room(5000), t0).worker, 1);
}

TEST(Placement, DownWorkerKeysMoveAtOnceToTheSecondRanked) {
  placement_options o = test_options();
  o.balance_factor = 1e9;
  placement p = make(4, o);
  std::vector<int> first(2000);
  for (int i = 0; i < 2000; ++i)
    first[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  p.set_load(view({{}, {}, {worker_state::down, 1}, {}}));
  std::uint64_t moved = 0;
  for (int i = 0; i < 2000; ++i) {
    const decision d = p.place(0, room(i), t0 + 1);
    if (first[static_cast<std::size_t>(i)] == 2) {
      ++moved;
      ASSERT_EQ(d.why, reason::moved);
      ASSERT_EQ(d.worker, ranking(p, room(i))[1]);
      ASSERT_EQ(d.rank, 1);
    } else {
      ASSERT_EQ(d.why, reason::affinity_hit);
      ASSERT_EQ(d.worker, first[static_cast<std::size_t>(i)]);
    }
  }
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::down), moved);
  // The moved keys stay where they went when the worker comes back.
  p.set_load(nullptr);
  for (int i = 0; i < 2000; ++i) {
    if (first[static_cast<std::size_t>(i)] != 2) continue;
    const decision d = p.place(0, room(i), t0 + 2);
    EXPECT_EQ(d.why, reason::affinity_hit);
    EXPECT_EQ(d.worker, ranking(p, room(i))[1]);
  }
}

// keys_on() is what the agent exports per worker (rooms per room worker): exact after new keys,
// moves, evictions and reconfiguration.
TEST(Placement, KeysPerWorkerStayExactThroughMovesEvictionsAndRemaps) {
  placement_options o = test_options();
  o.balance_factor = 1e9;
  o.max_keys = 1500;
  placement p = make(4, o);
  auto count = [&] {
    std::vector<std::size_t> c(4);
    for (int w = 0; w < 4; ++w)
      c[static_cast<std::size_t>(w)] = p.keys_on(w);
    return c;
  };
  std::vector<std::size_t> expect(4);
  for (int i = 0; i < 1000; ++i)
    ++expect[static_cast<std::size_t>(p.place(0, room(i), t0).worker)];
  EXPECT_EQ(count(), expect);
  p.set_load(view({{}, {}, {worker_state::down, 1}, {}}));
  std::fill(expect.begin(), expect.end(), 0);
  for (int i = 0; i < 1000; ++i)
    ++expect[static_cast<std::size_t>(p.place(0, room(i), t0 + 1).worker)];
  EXPECT_EQ(count(), expect);
  EXPECT_EQ(p.keys_on(2), 0u);
  for (int i = 1000; i < 2000; ++i)
    p.place(0, room(i), t0 + 2);  // 500 LRU evictions
  std::size_t total = 0;
  for (auto n : count())
    total += n;
  EXPECT_EQ(total, p.counters().entries);
  EXPECT_EQ(total, 1500u);
}

TEST(Placement, MoveNowSendsARememberedKeyToItsNextChoice) {
  placement p = make(4);
  p.record_changes(true);
  const std::string k = room(7);
  const int first = p.place(0, k, t0).worker;
  ASSERT_EQ(first, ranking(p, k)[0]);
  p.clear_changes();
  const int to = p.move_now(0, k, t0 + 1);
  EXPECT_EQ(to, ranking(p, k)[1]);
  EXPECT_EQ(p.place(0, k, t0 + 2).worker, to);
  EXPECT_EQ(p.place(0, k, t0 + 3).why, reason::affinity_hit);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::operator_), 1u);
  ASSERT_EQ(p.changes().size(), 1u);
  EXPECT_EQ(p.changes()[0].old_worker, first);
  EXPECT_EQ(p.changes()[0].worker, to);
  EXPECT_EQ(p.changes()[0].cause, spoa::routing::move_cause::operator_);
  EXPECT_EQ(p.move_now(0, room(8), t0 + 4), -1);  // not remembered
  EXPECT_EQ(p.move_now(1, "", t0 + 4), -1);       // unkeyed pool
  EXPECT_EQ(p.move_now(9, k, t0 + 4), -1);        // no such pool
}

TEST(Placement, ALoadSourceDrainActsAsAConfigDrainAndIsLifted) {
  // HAProxy's DRAIN (load_view drain): no new keys, remembered keys move gradually with cause
  // drain; lifted by the next view, and the config drain is independent of it.
  placement_options o = test_options();
  o.balance_factor = 1e9;
  o.max_moves_per_second = 1000;
  placement p = make(4, o);
  std::vector<int> where(400);
  for (int i = 0; i < 400; ++i)
    where[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  const auto healthy = worker_load{worker_state::healthy, 1.0};
  worker_load drained = healthy;
  drained.drain = true;
  p.set_load(view({healthy, drained, healthy, healthy}), t0 + 1);
  int moved = 0;
  for (int i = 0; i < 400; ++i) {
    const decision d = p.place(0, room(i), t0 + 2000);
    EXPECT_NE(d.worker, 1);
    moved += d.why == reason::moved;
  }
  EXPECT_GT(moved, 50);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::drain),
            static_cast<std::uint64_t>(moved));
  for (int i = 1000; i < 1400; ++i)
    EXPECT_NE(p.place(0, room(i), t0 + 2001).worker, 1);
  // Lifted: room2 takes new keys again.
  p.set_load(view({healthy, healthy, healthy, healthy}), t0 + 3000);
  int on2 = 0;
  for (int i = 2000; i < 2400; ++i)
    on2 += p.place(0, room(i), t0 + 3001).worker == 1;
  EXPECT_GT(on2, 50);
}

TEST(Placement, DrainMovesKeysGraduallyAtTheConfiguredRate) {
  placement_options o = test_options();
  o.balance_factor = 1e9;
  o.max_moves_per_second = 50;  // burst 50, then one per 20 ms
  placement p = make(4, o);
  std::vector<int> where(1000);
  for (int i = 0; i < 1000; ++i)
    where[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  const int drained = 1;
  const auto on_drained = [&] {
    int n = 0;
    for (int w : where)
      n += w == drained;
    return n;
  };
  const int before = on_drained();
  ASSERT_GT(before, 200);
  p.set_drain("room2", true);
  auto sweep = [&](std::uint64_t now) {
    int moved = 0;
    for (int i = 0; i < 1000; ++i) {
      const decision d = p.place(0, room(i), now);
      if (d.why == reason::moved) {
        ++moved;
        EXPECT_NE(d.worker, drained);
        EXPECT_EQ(d.worker, ranking(p, room(i))[1]);
      }
      where[static_cast<std::size_t>(i)] = d.worker;
    }
    return moved;
  };
  EXPECT_EQ(sweep(t0 + 10), 50);    // the burst
  EXPECT_EQ(sweep(t0 + 10), 0);     // no time passed, no tokens
  EXPECT_EQ(sweep(t0 + 110), 5);    // 100 ms at 50/s
  EXPECT_EQ(sweep(t0 + 1110), 50);  // a full second refills the burst, not more
  EXPECT_EQ(on_drained(), before - 105);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::drain), 105u);
  // New keys never go to the drained worker.
  for (int i = 5000; i < 6000; ++i)
    EXPECT_NE(p.place(0, room(i), t0 + 1111).worker, drained);
  // Eventually every key has left.
  for (std::uint64_t s = 2; on_drained() > 0 && s < 100; ++s)
    sweep(t0 + s * 1000 + 110);
  EXPECT_EQ(on_drained(), 0);
}

TEST(Placement, PersistentOverloadMovesKeysAfterTheDelay) {
  placement_options o = test_options();
  o.overload_after = std::chrono::milliseconds{5000};
  o.max_moves_per_second = 1000;
  placement p = make(4, o);
  std::vector<int> first(400);
  for (int i = 0; i < 400; ++i)
    first[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  // room1 at a tenth of its capacity: its load per unit is ~10x the average.
  p.set_load(view({{worker_state::healthy, 0.1}, {}, {}, {}}));
  auto sweep = [&](std::uint64_t now) {
    int moved = 0;
    for (int i = 0; i < 400; ++i)
      moved += p.place(0, room(i), now).why == reason::moved;
    return moved;
  };
  EXPECT_EQ(sweep(t0 + 1), 0);     // overload starts being tracked here
  EXPECT_EQ(sweep(t0 + 5000), 0);  // 4999 ms: not yet
  const int moved = sweep(t0 + 5001);
  EXPECT_GT(moved, 0);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::overload),
            static_cast<std::uint64_t>(moved));
  for (int i = 0; i < 400; ++i) {
    if (first[static_cast<std::size_t>(i)] != 0) {
      EXPECT_NE(p.place(0, room(i), t0 + 5002).why, reason::moved);
    }
  }
}

TEST(Placement, RateImbalanceAloneIsNotOverload) {
  // One busy room: its worker carries every request, but the load source reports no strain.
  placement p = make(4);
  const decision d = p.place(0, room(1), t0);
  for (std::uint64_t t = 1; t <= 60; ++t) {
    const decision again = p.place(0, room(1), t0 + t * 1000);
    ASSERT_EQ(again.why, reason::affinity_hit);
    ASSERT_EQ(again.worker, d.worker);
  }
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::overload), 0u);
}

TEST(Placement, IdleKeysExpireAfterTheTtl) {
  placement_options o = test_options();
  o.affinity_ttl = std::chrono::milliseconds{60'000};
  placement p = make(4, o);
  p.place(0, room(1), t0);
  EXPECT_EQ(p.place(0, room(1), t0 + 59'999).why, reason::affinity_hit);
  EXPECT_EQ(p.place(0, room(1), t0 + 119'998).why, reason::affinity_hit);
  EXPECT_EQ(p.place(0, room(1), t0 + 179'998).why, reason::new_key);  // idle 60 s: forgotten
  EXPECT_EQ(p.counters().evictions_ttl, 1u);
}

TEST(Placement, CapEvictsTheLeastRecentlyUsedKey) {
  // Steps of a minute: the table keeps LRU order at 60 s resolution (affinity_table.hpp).
  constexpr std::uint64_t m = 60'000;
  placement_options o = test_options();
  o.max_keys = 3;
  placement p = make(4, o);
  p.place(0, room(1), t0);
  p.place(0, room(2), t0 + 1 * m);
  p.place(0, room(3), t0 + 2 * m);
  EXPECT_EQ(p.place(0, room(1), t0 + 3 * m).why, reason::affinity_hit);
  EXPECT_NE(p.place(0, room(4), t0 + 4 * m).why, reason::affinity_hit);  // evicts room 2
  EXPECT_EQ(p.counters().evictions_lru, 1u);
  EXPECT_EQ(p.place(0, room(3), t0 + 5 * m).why, reason::affinity_hit);
  EXPECT_EQ(p.place(0, room(1), t0 + 6 * m).why, reason::affinity_hit);
  EXPECT_NE(p.place(0, room(2), t0 + 7 * m).why, reason::affinity_hit);  // evicts room 4
  EXPECT_NE(p.place(0, room(4), t0 + 8 * m).why, reason::affinity_hit);  // evicts room 3
  EXPECT_EQ(p.place(0, room(1), t0 + 9 * m).why, reason::affinity_hit);
  EXPECT_EQ(p.counters().evictions_lru, 3u);
}

TEST(Placement, TwoAgentsWithTheSameConfigPlaceFreshKeysIdentically) {
  placement a = make(6, test_options(), {1, 1, 2, 1, 3, 1});
  placement b = make(6, test_options(), {1, 1, 2, 1, 3, 1});
  for (int i = 0; i < 10'000; ++i) {
    const std::uint64_t now = t0 + static_cast<std::uint64_t>(i) * 7;
    const decision da = a.place(0, room(i), now), db = b.place(0, room(i), now);
    ASSERT_EQ(da.worker, db.worker) << room(i);
    ASSERT_EQ(da.why, db.why);
    ASSERT_EQ(da.key_hash, db.key_hash);
  }
}

TEST(Placement, SameKeyInTwoKeyedPoolsHasTwoEntries) {
  std::vector<worker_spec> ws = room_workers(2);
  ws.push_back({"fed1", "fed1", 1, 1.0, false});
  ws.push_back({"fed2", "fed2", 1, 1.0, false});
  placement p({{"room", true}, {"fed", true}}, ws, test_options());
  const decision a = p.place(0, "example.org", t0);
  const decision b = p.place(1, "example.org", t0);
  EXPECT_EQ(b.why, reason::new_key);
  EXPECT_EQ(p.place(0, "example.org", t0).worker, a.worker);
  EXPECT_EQ(p.place(1, "example.org", t0).worker, b.worker);
  EXPECT_EQ(p.counters().entries, 2u);
}

TEST(Placement, UnkeyedPoolRoundRobinsByOwnLoad) {
  std::vector<worker_spec> ws;
  for (int i = 0; i < 4; ++i)
    ws.push_back({"main" + std::to_string(i), "m", 0, 1.0, false});
  placement p({{"main", false}}, ws, test_options());
  std::vector<int> counts(4);
  for (int i = 0; i < 400; ++i) {
    const decision d = p.place(0, "ignored", t0);
    EXPECT_EQ(d.why, reason::least_loaded);
    ++counts[static_cast<std::size_t>(d.worker)];
  }
  EXPECT_EQ(counts, (std::vector<int>{100, 100, 100, 100}));
  EXPECT_EQ(p.counters().entries, 0u);
}

TEST(Placement, EmptyKeyIsLeastLoaded) {
  placement p = make(4);
  EXPECT_EQ(p.place(0, "", t0).why, reason::least_loaded);
}

TEST(Placement, AllDownFallsBackToTheFirstRankedWithoutRemembering) {
  placement p = make(3);
  p.set_load(view({{worker_state::down, 1}, {worker_state::down, 1}, {worker_state::down, 1}}));
  const decision d = p.place(0, room(7), t0);
  EXPECT_EQ(d.why, reason::fallback);
  EXPECT_EQ(d.worker, ranking(p, room(7))[0]);
  EXPECT_EQ(p.counters().entries, 0u);
}

TEST(Placement, UnknownOrEmptyPoolIsFallbackWithNoWorker) {
  placement p = make(2);
  EXPECT_EQ(p.place(7, room(1), t0).worker, -1);
  EXPECT_EQ(p.place(-1, room(1), t0).worker, -1);
  EXPECT_EQ(p.place(1, room(1), t0).worker, -1);  // "main" has no workers here
}

TEST(Placement, ReconfigureKeepsKeysByNameAndMovesKeysOfRemovedWorkers) {
  placement_options o = test_options();
  o.balance_factor = 1e9;
  placement p = make(4, o);
  std::map<int, std::string> first;
  for (int i = 0; i < 2000; ++i)
    first[i] = p.workers()[static_cast<std::size_t>(p.place(0, room(i), t0).worker)].name;
  // New list: room3 removed, room5 added, order shuffled.
  std::vector<worker_spec> ws = {{"room5", "room5", 0, 1.0, false},
                                 {"room4", "room4", 0, 1.0, false},
                                 {"room1", "room1", 0, 1.0, false},
                                 {"room2", "room2", 0, 1.0, false}};
  p.reconfigure({{"room", true}}, ws, o);
  std::uint64_t moved = 0;
  for (int i = 0; i < 2000; ++i) {
    const decision d = p.place(0, room(i), t0 + 1);
    const std::string& now_on = p.workers()[static_cast<std::size_t>(d.worker)].name;
    if (first[i] == "room3") {
      ++moved;
      ASSERT_EQ(d.why, reason::moved);
      ASSERT_EQ(d.worker, ranking(p, room(i))[0]);  // its best remaining worker
    } else {
      ASSERT_EQ(d.why, reason::affinity_hit);
      ASSERT_EQ(now_on, first[i]);  // remembered keys do not jump to room5
    }
  }
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::removed), moved);
}

TEST(Placement, ReconfigureWithAnotherHashKeyForgetsEverything) {
  placement p = make(4);
  for (int i = 0; i < 100; ++i)
    p.place(0, room(i), t0);
  placement_options o = test_options();
  o.hash_key = "rotated";
  p.reconfigure({{"room", true}}, room_workers(4), o);
  EXPECT_EQ(p.counters().entries, 0u);
  EXPECT_EQ(p.place(0, room(1), t0 + 1).why, reason::new_key);
}

TEST(Placement, InvalidSpecsThrowAtConfigTime) {
  EXPECT_THROW(placement({{"room", true}}, {{"a", "a", 1, 1.0, false}}, test_options()),
               std::invalid_argument);
  EXPECT_THROW(placement({{"room", true}}, {{"a", "a", 0, 0.0, false}}, test_options()),
               std::invalid_argument);
  EXPECT_THROW(placement({{"room", true}}, {{"a", "a", 0, 1.0, false}, {"a", "b", 0, 1.0, false}},
                         test_options()),
               std::invalid_argument);
}

TEST(Placement, ExplainListsTheRankingInOrderAndWhyTheFirstChoiceWasSkipped) {
  placement p = make(4);
  const std::string key = room(42);
  const auto order = ranking(p, key);
  // Down the first choice: the explanation must say so and pick the second.
  std::vector<worker_load> loads(4);
  loads[static_cast<std::size_t>(order[0])].state = worker_state::down;
  p.set_load(view(loads));
  const std::string j = p.explain(0, key, t0);
  std::size_t pos = 0;
  for (int w : order) {
    const std::size_t at =
        j.find("{\"worker\":\"" + p.workers()[static_cast<std::size_t>(w)].name + "\"");
    ASSERT_NE(at, std::string::npos) << j;
    EXPECT_GT(at, pos) << j;
    pos = at;
  }
  EXPECT_NE(j.find("\"state\":\"down\",\"skipped\":\"down\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"remembered\":null"), std::string::npos) << j;
  EXPECT_NE(j.find("\"chosen\":\"" + p.workers()[static_cast<std::size_t>(order[1])].name + "\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"reason\":\"new_key\""), std::string::npos) << j;
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  // explain changed nothing; place agrees with it, and then explain reports the memory.
  EXPECT_EQ(p.counters().entries, 0u);
  const decision d = p.place(0, key, t0);
  EXPECT_EQ(d.worker, order[1]);
  const std::string j2 = p.explain(0, key, t0);
  EXPECT_NE(
      j2.find("\"remembered\":\"" + p.workers()[static_cast<std::size_t>(order[1])].name + "\""),
      std::string::npos)
      << j2;
  EXPECT_NE(j2.find("\"reason\":\"affinity_hit\""), std::string::npos) << j2;
}

TEST(Placement, ExplainShowsOverBound) {
  placement p = make(4);
  int placed = 0;
  for (int i = 0; placed < 50; ++i) {
    if (ranking(p, room(i))[0] != 0) continue;
    for (int r = 0; r < 20; ++r)
      p.place(0, room(i), t0);
    ++placed;
  }
  for (int i = 100'000;; ++i) {
    if (ranking(p, room(i))[0] != 0) continue;
    const std::string j = p.explain(0, room(i), t0);
    EXPECT_NE(j.find("\"worker\":\"room1\""), std::string::npos);
    EXPECT_NE(j.find("\"skipped\":\"over bound\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"reason\":\"spill\""), std::string::npos) << j;
    break;
  }
}

TEST(Placement, ReasonNames) {
  EXPECT_EQ(to_string(reason::affinity_hit), "affinity_hit");
  EXPECT_EQ(to_string(reason::new_key), "new_key");
  EXPECT_EQ(to_string(reason::spill), "spill");
  EXPECT_EQ(to_string(reason::moved), "moved");
  EXPECT_EQ(to_string(reason::least_loaded), "least_loaded");
  EXPECT_EQ(to_string(reason::fallback), "fallback");
}

// place() names a plain hit's second choice without ranking the pool (equal weights): it must be
// the one decide() gets from the full ranking, also with members that take no new keys.
TEST(Placement, HitSecondChoiceWithoutRankingMatchesTheRanking) {
  for (const auto& weights : {std::vector<double>{}, std::vector<double>{1, 2, 1, 3, 1, 1}}) {
    placement p = make(6, test_options(), weights);
    for (int i = 0; i < 2000; ++i)
      p.place(0, room(i), t0);
    const std::vector<std::vector<worker_load>> loads = {
        {},
        {{worker_state::hot, 1}, {}, {worker_state::stalled, 1}, {}, {}, {}},
        {{}, {worker_state::healthy, 0}, {}, {worker_state::hot, 1}, {}, {}},
    };
    std::uint64_t now = t0 + 1;
    for (const auto& l : loads) {
      p.set_load(view(l), now);
      for (int i = 0; i < 2000; ++i) {
        const plan want = p.decide(0, room(i), now);
        const decision got = p.place(0, room(i), now);
        ASSERT_EQ(want.answer.why, reason::affinity_hit) << room(i);
        EXPECT_EQ(got.why, want.answer.why) << room(i);
        EXPECT_EQ(got.worker, want.answer.worker) << room(i);
        EXPECT_EQ(got.rank, want.answer.rank) << room(i);
        EXPECT_EQ(got.second, want.answer.second) << room(i);
      }
      ++now;
    }
  }
}

}  // namespace
}  // namespace spoa::routing
