// Distribution and movement properties of keyed weighted rendezvous hashing, exact over seeded,
// fixed key sets ("!room<i>:example.org").
#include "routing/rendezvous.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include <string>
#include <vector>

namespace spoa::routing {
namespace {

constexpr int key_count = 100'000;

std::string room(int i) {
  return "!room" + std::to_string(i) + ":example.org";
}

struct pool_fixture {
  sip_key key = derive_sip_key("rendezvous-test-key");
  std::vector<std::string> names;
  std::vector<rendezvous_node> nodes;

  explicit pool_fixture(std::vector<std::pair<std::string, double>> spec) {
    for (auto& [n, w] : spec)
      names.push_back(n);
    for (std::size_t i = 0; i < spec.size(); ++i)
      nodes.push_back({worker_seed(key, names[i]), spec[i].second, names[i]});
  }
  int first(int i) const { return rendezvous_first(siphash24(key, room(i)), nodes); }
};

TEST(Rendezvous, HashToUnitStaysInsideTheOpenInterval) {
  EXPECT_GT(hash_to_unit(0), 0.0);
  EXPECT_LT(hash_to_unit(~std::uint64_t{0}), 1.0);
  EXPECT_EQ(hash_to_unit(0), 0x1p-54);
  EXPECT_EQ(hash_to_unit(1ULL << 11), 1.5 * 0x1p-53);
  EXPECT_GT(-1.0 / std::log(hash_to_unit(~std::uint64_t{0})), 1e15);  // finite, very high
}

TEST(Rendezvous, FourEqualWorkersGetAnEqualShareWithinThreePercent) {
  pool_fixture p({{"room1", 1}, {"room2", 1}, {"room3", 1}, {"room4", 1}});
  std::vector<int> counts(4);
  for (int i = 0; i < key_count; ++i)
    ++counts[static_cast<std::size_t>(p.first(i))];
  for (int c : counts) {
    EXPECT_GE(c, 25'000 * 0.97);
    EXPECT_LE(c, 25'000 * 1.03);
  }
}

TEST(Rendezvous, WeightsOneTwoThreeAreRespectedWithinThreePercent) {
  pool_fixture p({{"a", 1}, {"b", 2}, {"c", 3}});
  std::vector<int> counts(3);
  for (int i = 0; i < key_count; ++i)
    ++counts[static_cast<std::size_t>(p.first(i))];
  for (std::size_t w = 0; w < 3; ++w) {
    const double expected = key_count * static_cast<double>(w + 1) / 6.0;
    EXPECT_GE(counts[w], expected * 0.97) << w;
    EXPECT_LE(counts[w], expected * 1.03) << w;
  }
}

TEST(Rendezvous, AddingAFifthWorkerMovesOneFifthOfKeysAllToIt) {
  pool_fixture four({{"room1", 1}, {"room2", 1}, {"room3", 1}, {"room4", 1}});
  pool_fixture five({{"room1", 1}, {"room2", 1}, {"room3", 1}, {"room4", 1}, {"room5", 1}});
  int moved = 0;
  for (int i = 0; i < key_count; ++i) {
    const int before = four.first(i), after = five.first(i);
    if (before != after) {
      ++moved;
      ASSERT_EQ(after, 4) << room(i) << " moved between old workers";
    }
  }
  EXPECT_GE(moved, key_count * 0.18);
  EXPECT_LE(moved, key_count * 0.22);
}

TEST(Rendezvous, RemovingAWorkerMovesOnlyItsKeys) {
  pool_fixture four({{"room1", 1}, {"room2", 1}, {"room3", 1}, {"room4", 1}});
  pool_fixture three({{"room1", 1}, {"room2", 1}, {"room4", 1}});  // room3 left
  const int index_in_three[] = {0, 1, -1, 2};
  int moved = 0;
  for (int i = 0; i < key_count; ++i) {
    const int before = four.first(i), after = three.first(i);
    if (before == 2) {
      ++moved;
    } else {
      ASSERT_EQ(after, index_in_three[before]) << room(i);
    }
  }
  EXPECT_GE(moved, 25'000 * 0.97);
  EXPECT_LE(moved, 25'000 * 1.03);
}

TEST(Rendezvous, RankingIsAFullOrderStartingWithTheFirstChoice) {
  pool_fixture p({{"room1", 1}, {"room2", 2}, {"room3", 1}, {"room4", 1}});
  std::vector<int> order(4);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t h = siphash24(p.key, room(i));
    rendezvous_rank(h, p.nodes, order);
    EXPECT_EQ(order[0], rendezvous_first(h, p.nodes));
    for (std::size_t r = 1; r < order.size(); ++r) {
      const auto a = static_cast<std::size_t>(order[r - 1]), b = static_cast<std::size_t>(order[r]);
      EXPECT_GT(rendezvous_score(h, p.nodes[a].seed, p.nodes[a].weight),
                rendezvous_score(h, p.nodes[b].seed, p.nodes[b].weight));
    }
  }
}

TEST(Rendezvous, ExactTiesGoToTheSmallerName) {
  // Two nodes with the same seed and weight tie on every key.
  const std::vector<rendezvous_node> nodes{{42, 1.0, "zeta"}, {42, 1.0, "alpha"}};
  EXPECT_EQ(rendezvous_first(7, nodes), 1);
  std::vector<int> order(2);
  rendezvous_rank(7, nodes, order);
  EXPECT_EQ(order, (std::vector<int>{1, 0}));
}

TEST(Rendezvous, AnotherHashKeyGivesAnotherPlacement) {
  pool_fixture a({{"room1", 1}, {"room2", 1}, {"room3", 1}, {"room4", 1}});
  pool_fixture b = a;
  b.key = derive_sip_key("another-key");
  for (std::size_t i = 0; i < b.nodes.size(); ++i)
    b.nodes[i].seed = worker_seed(b.key, b.names[i]);
  int same = 0;
  for (int i = 0; i < 10'000; ++i)
    same += a.first(i) == b.first(i);
  // Independent placements agree on about 1/4 of keys.
  EXPECT_GT(same, 2'000);
  EXPECT_LT(same, 3'000);
}

}  // namespace
}  // namespace spoa::routing
