#include "routing/affinity_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <random>
#include <unordered_map>
#include <vector>

namespace spoa::routing {
namespace {

constexpr std::uint64_t sec = 1000;  // tables here use a 1 s LRU resolution: exact order per second

std::vector<std::uint64_t> oldest_first(const affinity_table& t) {
  std::vector<std::uint64_t> out;
  t.for_each_oldest_first([&](const affinity_table::entry& e) { out.push_back(e.hash); });
  return out;
}

TEST(AffinityTable, InsertFindErase) {
  affinity_table t(10, 0, 1);
  EXPECT_EQ(t.find(1, 0), nullptr);
  ASSERT_NE(t.insert(1, 3, 0, 0), nullptr);
  ASSERT_NE(t.insert(2, 4, 1, 0), nullptr);
  auto* e = t.find(1, 5);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->worker, 3);
  EXPECT_EQ(e->last_used_ms, 5u);
  EXPECT_EQ(t.find(2, 5)->rank, 1);
  EXPECT_TRUE(t.erase(1));
  EXPECT_FALSE(t.erase(1));
  EXPECT_EQ(t.find(1, 5), nullptr);
  EXPECT_EQ(t.size(), 1u);
}

TEST(AffinityTable, CapEvictsLeastRecentlyUsedFirst) {
  affinity_table t(3, 0, 1);
  t.insert(10, 0, 0, 0 * sec);
  t.insert(11, 0, 0, 1 * sec);
  t.insert(12, 0, 0, 2 * sec);
  ASSERT_NE(t.find(10, 3 * sec), nullptr);  // 10 becomes the most recent
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{11, 12, 10}));
  t.insert(13, 0, 0, 4 * sec);  // evicts 11
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{12, 10, 13}));
  t.insert(14, 0, 0, 5 * sec);  // evicts 12
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{10, 13, 14}));
  EXPECT_EQ(t.evictions_lru(), 2u);
  EXPECT_EQ(t.peek(11, 5 * sec), nullptr);
  EXPECT_EQ(t.peek(12, 5 * sec), nullptr);
}

TEST(AffinityTable, HitsWithinOnePeriodDoNotReorder) {
  affinity_table t(3, 0, 1);
  t.insert(1, 0, 0, 0);
  t.insert(2, 0, 0, 10);
  ASSERT_NE(t.find(1, 20), nullptr);  // within the resolution: position kept, last use updated
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(t.peek(1, 20)->last_used_ms, 20u);
  ASSERT_NE(t.find(1, sec), nullptr);  // a resolution later: moves to the head
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{2, 1}));
}

TEST(AffinityTable, DefaultResolutionReordersOnlyAfterAMinute) {
  affinity_table t(3, 0);
  t.insert(1, 0, 0, 0);
  t.insert(2, 0, 0, 0);
  ASSERT_NE(t.find(1, 59'999), nullptr);
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{1, 2}));
  ASSERT_NE(t.find(1, 60'000), nullptr);
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{2, 1}));
}

TEST(AffinityTable, IdleEntriesExpireAfterTheTtl) {
  affinity_table t(10, 1000, 1);
  t.insert(1, 0, 0, 0);
  t.insert(2, 0, 0, 500);
  EXPECT_NE(t.find(1, 999), nullptr);   // refreshed at 999
  EXPECT_EQ(t.find(2, 1500), nullptr);  // idle 1000 ms: gone
  EXPECT_EQ(t.evictions_ttl(), 1u);
  EXPECT_NE(t.peek(1, 1998), nullptr);
  EXPECT_EQ(t.peek(1, 1999), nullptr);
  EXPECT_EQ(t.expire(1999, 10), 1u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.evictions_ttl(), 2u);
}

TEST(AffinityTable, ExpireStopsAtTheLimitAndAtTheFirstLiveEntry) {
  affinity_table t(10, 100, 1);
  for (std::uint64_t i = 0; i < 5; ++i)
    t.insert(i + 1, 0, 0, i * sec);
  EXPECT_EQ(t.expire(2 * sec + 100, 1), 1u);
  EXPECT_EQ(t.expire(2 * sec + 100, 10), 2u);  // 2 and 3; 4 (at 3 s) is live
  EXPECT_EQ(t.size(), 2u);
}

TEST(AffinityTable, MatchesAReferenceMapUnderRandomOperations) {
  std::mt19937_64 rng(20240501);
  affinity_table t(1'000'000, 0, 1);
  std::unordered_map<std::uint64_t, std::uint16_t> ref;
  // A small key space, so inserts, hits and erases all happen often; the second half repeats
  // the first half's low 32 bits (same home slot and tag), so the full-hash check is exercised.
  std::vector<std::uint64_t> keys(5000);
  for (std::size_t i = 0; i < 2500; ++i) {
    keys[i] = rng();
    keys[i + 2500] = keys[i] ^ (std::uint64_t{1 + (rng() & 0xff)} << 40);
  }
  for (int step = 0; step < 200'000; ++step) {
    const std::uint64_t h = keys[rng() % keys.size()];
    const auto op = rng() % 3;
    if (op == 0) {
      if (!ref.count(h)) {
        const auto w = static_cast<std::uint16_t>(rng() % 16);
        t.insert(h, w, 0, 0);
        ref[h] = w;
      }
    } else if (op == 1) {
      EXPECT_EQ(t.erase(h), ref.erase(h) == 1);
    } else {
      const auto* e = t.find(h, 0);
      ASSERT_EQ(e != nullptr, ref.count(h) == 1);
      if (e) {
        EXPECT_EQ(e->worker, ref[h]);
      }
    }
  }
  EXPECT_EQ(t.size(), ref.size());
  for (auto& [h, w] : ref)
    ASSERT_NE(t.peek(h, 0), nullptr);
}

TEST(AffinityTable, LruOrderMatchesAReferenceListUnderChurn) {
  // Entries move when backward-shift deletion closes a hole; their LRU links must follow.
  std::mt19937_64 rng(77);
  std::vector<std::uint64_t> keys(2000);
  for (std::size_t i = 0; i < 1000; ++i) {
    keys[i] = rng();
    keys[i + 1000] = keys[i] ^ (std::uint64_t{1} << (40 + rng() % 20));  // same home slot
  }
  affinity_table t(500, 0, 1);
  std::list<std::uint64_t> ref;  // most recent first
  for (std::uint64_t step = 0; step < 100'000; ++step) {
    const std::uint64_t now = step * sec;  // a new second per step: exact LRU
    const std::uint64_t h = keys[rng() % keys.size()];
    const auto it = std::find(ref.begin(), ref.end(), h);
    if (rng() % 8 == 0) {
      EXPECT_EQ(t.erase(h), it != ref.end());
      if (it != ref.end()) ref.erase(it);
    } else if (t.find(h, now) != nullptr) {
      ASSERT_NE(it, ref.end());
      ref.splice(ref.begin(), ref, it);
    } else {
      ASSERT_EQ(it, ref.end());
      t.insert(h, 0, 0, now);
      ref.push_front(h);
      if (ref.size() > 500) ref.pop_back();
    }
    if (step % 997 == 0) {
      const std::vector<std::uint64_t> expected(ref.rbegin(), ref.rend());
      ASSERT_EQ(oldest_first(t), expected) << step;
    }
  }
  EXPECT_EQ(t.size(), ref.size());
}

TEST(AffinityTable, LowerCapEvictsDownToIt) {
  affinity_table t(5, 0, 1);
  for (std::uint64_t i = 0; i < 5; ++i)
    t.insert(i, 0, 0, i * sec);
  t.set_limits(2, 0);
  EXPECT_EQ(oldest_first(t), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(t.evictions_lru(), 3u);
}

TEST(AffinityTable, ZeroCapRemembersNothing) {
  affinity_table t(0, 0, 1);
  EXPECT_EQ(t.insert(1, 0, 0, 0), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(AffinityTable, RemapWorkers) {
  affinity_table t(10, 0, 1);
  t.insert(1, 0, 0, 0);
  t.insert(2, 1, 0, 0);
  t.insert(3, 7, 0, 0);
  const std::uint16_t map[] = {affinity_table::no_worker, 0};
  t.remap_workers(map);
  EXPECT_EQ(t.peek(1, 0)->worker, affinity_table::no_worker);
  EXPECT_EQ(t.peek(2, 0)->worker, 0);
  EXPECT_EQ(t.peek(3, 0)->worker, affinity_table::no_worker);
}

TEST(AffinityTable, MemoryPerKeyStaysWithinBudget) {
  affinity_table t(100'000, 0, 1);
  t.reserve(100'000);
  for (std::uint64_t i = 0; i < 100'000; ++i)
    t.insert(i * 0x9e3779b97f4a7c15ULL, 0, 0, 0);
  const double per_key = static_cast<double>(t.memory_bytes()) / 100'000.0;
  EXPECT_LE(per_key, 120.0);
  EXPECT_GE(per_key, 32.0);
}

}  // namespace
}  // namespace spoa::routing
