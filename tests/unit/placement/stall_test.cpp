// Issue 18 (stalled workers), placement side: a stalled worker takes no new keys and keeps its
// own; every decision names a second choice, which is exactly where a key goes when its worker
// is down; a key displaced by a down worker returns home gradually once that worker has been up
// for return_after_ms. Exact, deterministic: explicit clock, injected load views.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "routing/placement.hpp"
#include "routing/rendezvous.hpp"

namespace spoa::routing {
namespace {

constexpr std::uint64_t t0 = 1'000'000;

std::string room(int i) {
  return "!stall" + std::to_string(i) + ":example.org";
}

placement make(int n, placement_options o) {
  std::vector<worker_spec> ws;
  for (int i = 0; i < n; ++i)
    ws.push_back({"room" + std::to_string(i + 1), "room" + std::to_string(i + 1), 0, 1.0, false});
  ws.push_back({"main", "main", 1, 1.0, false});
  ws.push_back({"main2", "main2", 1, 1.0, false});
  return placement({{"room", true}, {"main", false}}, std::move(ws), std::move(o));
}

placement_options opts() {
  placement_options o;
  o.hash_key = "stall-test-key";
  o.balance_factor = 1e9;  // no load pressure unless a test asks for it
  o.return_after = std::chrono::milliseconds{10'000};
  o.return_per_second = 2;  // burst 2, then one per 500 ms
  return o;
}

std::shared_ptr<const load_view> states(std::vector<worker_state> s) {
  auto v = std::make_shared<load_view>();
  for (auto st : s)
    v->workers.push_back({st, st == worker_state::down ? 0.0 : 1.0});
  return v;
}
constexpr auto H = worker_state::healthy;

// The rendezvous ranking of a key over pool 0 (room1..roomN), as worker indices.
std::vector<int> ranking(const placement& p, std::string_view key) {
  const sip_key k = derive_sip_key(p.options().hash_key);
  std::vector<rendezvous_node> nodes;
  for (const auto& w : p.workers())
    if (w.pool == 0) nodes.push_back({worker_seed(k, w.name), w.weight, w.name});
  std::vector<int> order(nodes.size());
  rendezvous_rank(p.key_hash(key), nodes, order);
  return order;  // pool 0's workers are indices 0..N-1, in name order
}

TEST(Stall, StalledWorkerTakesNoNewKeysAndKeepsItsOwn) {
  placement p = make(4, opts());
  std::vector<int> first(400);
  for (int i = 0; i < 400; ++i)
    first[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  const std::size_t on2 = p.keys_on(2);
  ASSERT_GT(on2, 50u);
  p.set_load(states({H, H, worker_state::stalled, H}), t0 + 1);
  for (int i = 0; i < 400; ++i) {
    const decision d = p.place(0, room(i), t0 + 2);
    ASSERT_EQ(d.why, reason::affinity_hit);
    ASSERT_EQ(d.worker, first[static_cast<std::size_t>(i)]);
    // Its keys' second choice is never the stalled worker.
    ASSERT_NE(d.second, 2);
  }
  EXPECT_EQ(p.keys_on(2), on2);
  int aimed_at_2 = 0;
  for (int i = 400; i < 800; ++i) {
    const auto order = ranking(p, room(i));
    const decision d = p.place(0, room(i), t0 + 3);
    ASSERT_NE(d.worker, 2);
    ASSERT_EQ(d.why, reason::new_key);
    if (order[0] == 2) {
      ++aimed_at_2;
      EXPECT_EQ(d.worker, order[1]);
      EXPECT_EQ(d.rank, 1);
    }
  }
  EXPECT_EQ(p.keys_on(2), on2);
  EXPECT_GT(aimed_at_2, 50);
  for (int i = 800;; ++i) {
    if (ranking(p, room(i))[0] != 2) continue;
    const std::string j = p.explain(0, room(i), t0 + 4);
    EXPECT_NE(j.find("\"state\":\"stalled\",\"skipped\":\"stalled\""), std::string::npos) << j;
    break;
  }
  // A stalled worker's keys are not "overloaded" either: they stay however long it lasts.
  for (int i = 0; i < 400; ++i)
    p.place(0, room(i), t0 + 60'000);
  EXPECT_EQ(p.keys_on(2), on2);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::overload), 0u);
}

TEST(Stall, AllStalledFallsBackToTheFirstRankedWithoutRemembering) {
  placement p = make(3, opts());
  const auto S = worker_state::stalled;
  p.set_load(states({S, S, S}), t0);
  const decision d = p.place(0, room(1), t0);
  EXPECT_EQ(d.why, reason::fallback);
  EXPECT_EQ(d.worker, ranking(p, room(1))[0]);
  EXPECT_EQ(d.second, ranking(p, room(1))[1]);
  EXPECT_EQ(p.counters().entries, 0u);
  // Unkeyed pool with every worker stalled: the first by name, the other as second choice.
  const auto u = p.place(1, "", t0);
  EXPECT_EQ(u.why, reason::least_loaded);  // main/main2 are healthy: pool 1 is not stalled
}

TEST(Stall, SecondChoiceIsTheNextEligibleWorkerOfTheRanking) {
  placement p = make(4, opts());
  for (int i = 0; i < 500; ++i) {
    const auto order = ranking(p, room(i));
    const decision d = p.place(0, room(i), t0);
    ASSERT_EQ(d.worker, order[0]);
    ASSERT_EQ(d.second, order[1]);
    const decision hit = p.place(0, room(i), t0);
    ASSERT_EQ(hit.why, reason::affinity_hit);
    ASSERT_EQ(hit.second, order[1]);
  }
  // With worker 1 down, keys whose second choice it was now name their third.
  p.set_load(states({H, worker_state::down, H, H}), t0 + 1);
  int skipped = 0;
  for (int i = 0; i < 500; ++i) {
    const auto order = ranking(p, room(i));
    if (order[0] == 1) continue;  // those move; see the next test
    const decision d = p.place(0, room(i), t0 + 2);
    ASSERT_EQ(d.second, order[1] == 1 ? order[2] : order[1]);
    skipped += order[1] == 1 ? 1 : 0;
  }
  EXPECT_GT(skipped, 50);
  // Unkeyed pool: the other worker.
  const decision u = p.place(1, "", t0 + 3);
  EXPECT_EQ(u.why, reason::least_loaded);
  EXPECT_EQ(u.second, u.worker == 4 ? 5 : 4);
}

// The agent tells HAProxy the second choice before the worker is down; when it is, the key goes
// exactly there, so HAProxy (which may have skipped the DOWN server first) and the agent agree.
TEST(Stall, ADownWorkersKeysMoveToTheSecondChoiceTheyWereGiven) {
  placement_options o = opts();
  o.balance_factor = 1.0;  // tight bound: load must not change the alternate
  placement p = make(3, o);
  std::vector<int> second(600, -1);
  for (int i = 0; i < 600; ++i) {
    for (int r = 0; r < 1 + i % 7; ++r)  // uneven per-key rates
      second[static_cast<std::size_t>(i)] = p.place(0, room(i), t0 + 10).second;
  }
  std::vector<int> on(600);
  for (int i = 0; i < 600; ++i)
    on[static_cast<std::size_t>(i)] = p.place(0, room(i), t0 + 20).worker;
  p.set_load(states({worker_state::down, H, H}), t0 + 30);
  std::uint64_t moved = 0;
  for (int i = 0; i < 600; ++i) {
    const decision d = p.place(0, room(i), t0 + 40);
    if (on[static_cast<std::size_t>(i)] != 0) continue;
    ++moved;
    ASSERT_EQ(d.why, reason::moved);
    ASSERT_EQ(d.worker, second[static_cast<std::size_t>(i)]) << i;
  }
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::down), moved);
  EXPECT_EQ(p.keys_on(0), 0u);
  EXPECT_EQ(p.table().displaced_count(), moved);
}

// Sticky home, with exact counts: return_after 10 s, 2 keys per second (burst 2).
TEST(Stall, DisplacedKeysReturnHomeGraduallyAfterReturnAfter) {
  placement p = make(4, opts());
  std::vector<int> home(200);
  for (int i = 0; i < 200; ++i)
    home[static_cast<std::size_t>(i)] = p.place(0, room(i), t0).worker;
  const std::size_t n = p.keys_on(2);
  ASSERT_GE(n, 40u);
  std::vector<int> displaced;
  for (int i = 0; i < 200; ++i)
    if (home[static_cast<std::size_t>(i)] == 2) displaced.push_back(i);

  p.set_load(states({H, H, worker_state::down, H}), t0 + 100);
  for (int i : displaced)
    ASSERT_EQ(p.place(0, room(i), t0 + 200).why, reason::moved);
  EXPECT_EQ(p.keys_on(2), 0u);
  EXPECT_EQ(p.table().displaced_count(), n);

  const std::uint64_t up = t0 + 1000;
  p.set_load(states({H, H, H, H}), up);
  // Requests every key of the list once at `t`; returns how many went home.
  auto sweep = [&](std::uint64_t t) {
    int back = 0;
    for (int i : displaced) {
      const decision d = p.place(0, room(i), t);
      if (d.why == reason::moved) {
        ++back;
        EXPECT_EQ(d.worker, 2);
        EXPECT_EQ(d.rank, 0);
      }
    }
    return back;
  };
  EXPECT_EQ(sweep(up + 9'999), 0);   // not up for return_after yet
  EXPECT_EQ(sweep(up + 10'000), 2);  // a full bucket: the burst
  EXPECT_EQ(sweep(up + 10'000), 0);
  EXPECT_EQ(sweep(up + 10'499), 0);
  EXPECT_EQ(sweep(up + 10'500), 1);  // one token per 500 ms
  EXPECT_EQ(sweep(up + 11'000), 1);
  EXPECT_EQ(p.keys_on(2), 4u);
  // Returned keys are home: plain affinity hits there, no longer displaced.
  EXPECT_EQ(p.table().displaced_count(), n - 4);
  std::uint64_t t = up + 11'000;
  std::size_t rounds = 0;
  while (p.keys_on(2) < n) {
    t += 1000;
    ++rounds;
    const std::size_t away = n - p.keys_on(2);
    ASSERT_EQ(sweep(t), static_cast<int>(std::min<std::size_t>(2, away)));
  }
  EXPECT_EQ(rounds, (n - 4 + 1) / 2);
  EXPECT_EQ(p.keys_on(2), n);
  EXPECT_EQ(p.table().displaced_count(), 0u);
  EXPECT_EQ(p.counters().moved(spoa::routing::move_cause::returned), n);
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(p.place(0, room(i), t + 1).worker, home[static_cast<std::size_t>(i)]);
}

// "No worker ends a stall with 0 rooms and then drowns in new ones": back from down, a worker's
// decayed rate is reset to the pool average, so new keys follow their ranking instead of all
// spilling onto the worker that looks empty.
TEST(Stall, AWorkerBackFromDownTakesItsRankingShareOfNewKeysNotAll) {
  placement_options o = opts();
  o.balance_factor = 1.25;
  o.return_per_second = 0;  // only new keys here
  placement p = make(4, o);
  for (int i = 0; i < 400; ++i)
    for (int r = 0; r < 5; ++r)
      p.place(0, room(i), t0 + static_cast<std::uint64_t>(r));
  p.set_load(states({H, H, worker_state::down, H}), t0 + 10);
  std::uint64_t t = t0 + 10;
  for (; t < t0 + 60'000; t += 100)  // a minute of traffic on the others; worker 2's rate decays
    for (int i = 0; i < 400; i += 40)
      p.place(0, room(i), t);
  p.set_load(states({H, H, H, H}), t);
  int on2 = 0, first2 = 0;
  for (int i = 1000; i < 1100; ++i) {
    const decision d = p.place(0, room(i), t);
    on2 += d.worker == 2 ? 1 : 0;
    first2 += ranking(p, room(i))[0] == 2 ? 1 : 0;
    ASSERT_EQ(d.why, reason::new_key) << i;  // nobody over the bound: no spill
  }
  EXPECT_EQ(on2, first2);
  EXPECT_EQ(on2, 25);
}

TEST(Stall, NoReturnWhileHomeIsHotOverTheBoundOrWithReturnsOff) {
  placement_options o = opts();
  placement p = make(3, o);
  int key = -1;
  for (int i = 0; key < 0; ++i)
    if (ranking(p, room(i))[0] == 0) key = i;
  p.place(0, room(key), t0);
  p.set_load(states({worker_state::down, H, H}), t0 + 1);
  const int alt = p.place(0, room(key), t0 + 2).worker;
  ASSERT_NE(alt, 0);
  p.set_load(states({worker_state::hot, H, H}), t0 + 3);
  EXPECT_EQ(p.place(0, room(key), t0 + 60'000).worker, alt);  // hot home: stays away
  // Hot is up (only down and stalled stop the return_after clock): cool again, it returns.
  p.set_load(states({H, H, H}), t0 + 60'001);
  EXPECT_EQ(p.place(0, room(key), t0 + 60'002).worker, 0);

  // Home over the bound: balance_factor 1 and home busy with its other keys.
  o.balance_factor = 1.0;
  placement q = make(3, o);
  q.place(0, room(key), t0);
  q.set_load(states({worker_state::down, H, H}), t0 + 1);
  ASSERT_NE(q.place(0, room(key), t0 + 2).worker, 0);
  q.set_load(states({H, H, H}), t0 + 3);
  for (int i = 0, placed = 0; placed < 40; ++i) {  // new keys that rank worker 0 first
    if (i == key || ranking(q, room(i))[0] != 0) continue;
    for (int r = 0; r < 10; ++r)
      q.place(0, room(i), t0 + 4);
    ++placed;
  }
  EXPECT_NE(q.place(0, room(key), t0 + 10'004).worker, 0);
  const std::string j = q.explain(0, room(key), t0 + 10'004);
  EXPECT_NE(j.find("\"home\":\"room1\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"reason\":\"affinity_hit\""), std::string::npos) << j;

  o.balance_factor = 1e9;
  o.return_per_second = 0;
  placement r = make(3, o);
  r.place(0, room(key), t0);
  r.set_load(states({worker_state::down, H, H}), t0 + 1);
  r.place(0, room(key), t0 + 2);
  r.set_load(states({H, H, H}), t0 + 3);
  EXPECT_NE(r.place(0, room(key), t0 + 1'000'000).worker, 0);
}

// A key keeps its first home through a second outage; a flap restarts the return_after clock.
TEST(Stall, HomeSurvivesASecondDownAndAFlapRestartsTheClock) {
  placement p = make(4, opts());
  int key = -1;
  for (int i = 0; key < 0; ++i)
    if (ranking(p, room(i))[0] == 0) key = i;
  const auto order = ranking(p, room(key));
  p.place(0, room(key), t0);
  std::vector<worker_state> s(4, H);
  s[0] = worker_state::down;
  p.set_load(states(s), t0 + 1);
  EXPECT_EQ(p.place(0, room(key), t0 + 2).worker, order[1]);
  s[static_cast<std::size_t>(order[1])] = worker_state::down;
  p.set_load(states(s), t0 + 3);
  const decision d = p.place(0, room(key), t0 + 4);
  EXPECT_EQ(d.worker, order[2]);
  EXPECT_EQ(d.why, reason::moved);
  EXPECT_NE(p.explain(0, room(key), t0 + 5).find("\"home\":\"room1\""), std::string::npos);
  // Both back; home flaps (stalled) 5 s later, up again at +20 s.
  p.set_load(states({H, H, H, H}), t0 + 10'000);
  p.set_load(states({worker_state::stalled, H, H, H}), t0 + 15'000);
  p.set_load(states({H, H, H, H}), t0 + 20'000);
  EXPECT_EQ(p.place(0, room(key), t0 + 29'999).worker, order[2]);
  EXPECT_EQ(p.place(0, room(key), t0 + 30'000).worker, 0);  // home, not the first alternate
}

TEST(Stall, AMoveToTheHomeWorkerEndsTheDisplacement) {
  placement p = make(3, opts());
  int key = -1;
  for (int i = 0; key < 0; ++i)
    if (ranking(p, room(i))[0] == 0) key = i;
  const auto order = ranking(p, room(key));
  p.place(0, room(key), t0);
  p.set_load(states({worker_state::down, H, H}), t0 + 1);
  EXPECT_EQ(p.place(0, room(key), t0 + 2).worker, order[1]);
  // Home back (not yet for return_after), the alternate down: the key goes straight home.
  std::vector<worker_state> s(3, H);
  s[static_cast<std::size_t>(order[1])] = worker_state::down;
  p.set_load(states(s), t0 + 3);
  const decision d = p.place(0, room(key), t0 + 4);
  EXPECT_EQ(d.worker, 0);
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(p.table().displaced_count(), 0u);
}

TEST(Stall, ReconfigureForgetsHomesAndKeepsKeys) {
  placement p = make(3, opts());
  for (int i = 0; i < 100; ++i)
    p.place(0, room(i), t0);
  p.set_load(states({worker_state::down, H, H}), t0 + 1);
  for (int i = 0; i < 100; ++i)
    p.place(0, room(i), t0 + 2);
  ASSERT_GT(p.table().displaced_count(), 10u);
  std::vector<int> before(100);
  for (int i = 0; i < 100; ++i)
    before[static_cast<std::size_t>(i)] = p.place(0, room(i), t0 + 3).worker;
  std::vector<worker_spec> ws = p.workers();
  std::vector<pool_spec> pools = p.pools();
  p.reconfigure(pools, ws, opts());
  EXPECT_EQ(p.table().displaced_count(), 0u);
  p.set_load(states({H, H, H}), t0 + 4);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(p.place(0, room(i), t0 + 100'000).worker, before[static_cast<std::size_t>(i)]);
}

}  // namespace
}  // namespace spoa::routing
