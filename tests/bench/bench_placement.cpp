// Placement decision cost with 1M keys remembered, and memory per remembered key.
//
//   bench_placement --benchmark_filter=.   (build type RelWithDebInfo or Release)
//
// hit:  a remembered key, keys visited in a seeded random order over all 1M entries (the
//       cache-unfriendly worst case: one DRAM miss per decision; real traffic is skewed).
// hit_hot: the same 1M-key table, requests spread over 10k hot rooms.
// miss: a key never seen, with the table full at max_keys = 1M (every miss also evicts the LRU
//       entry: the steady state of a busy agent).
// Time advances 1 ms per 1000 decisions (~1M decisions/s), so the once-per-millisecond overload
// evaluation is included at a realistic rate.
// memory: RSS growth (from /proc/self/statm) for building a placement with 1M keys, per key,
//       and the table's own allocation per key.
// growth_hit/KEYS/WORKERS, growth_miss/KEYS/WORKERS: how the cost grows with remembered rooms
//       (10k, 100k, 1M, 10M at 4 workers) and with workers per pool (4, 16, 64 at 1M keys);
//       each reports the table's bytes per key and the RSS growth per key of its fill.
//       `--benchmark_filter=growth` for the tables alone (the 10M fill takes ~20 s).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "routing/placement.hpp"

namespace {

using spoa::routing::placement;
using spoa::routing::placement_options;
using spoa::routing::pool_spec;
using spoa::routing::worker_spec;

constexpr std::size_t table_keys = 1'000'000;
constexpr std::uint64_t t0 = 1'000'000;

std::string room(std::size_t i) {
  return "!room" + std::to_string(i) + ":example.org";
}

std::unique_ptr<placement> make(int workers, std::size_t max_keys = table_keys) {
  std::vector<worker_spec> ws;
  for (int i = 0; i < workers; ++i)
    ws.push_back({"room" + std::to_string(i + 1), "room" + std::to_string(i + 1), 0, 1.0, false});
  placement_options o;
  o.hash_key = "bench-key";
  o.max_keys = max_keys;
  return std::make_unique<placement>(std::vector<pool_spec>{{"room", true}}, std::move(ws), o);
}

// 1M keys placed, 1 ms per 1000 keys.
std::unique_ptr<placement> filled(int workers) {
  auto p = make(workers);
  for (std::size_t i = 0; i < table_keys; ++i)
    p->place(0, room(i), t0 + i / 1000);
  return p;
}

std::vector<std::string> shuffled_keys(std::size_t from, std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i)
    idx[i] = from + i;
  std::shuffle(idx.begin(), idx.end(), std::mt19937_64(seed));
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i : idx)
    keys.push_back(room(i));  // allocated in visiting order
  return keys;
}

void BM_place_hit(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  auto p = filled(workers);
  const auto keys = shuffled_keys(0, table_keys, 42);
  std::uint64_t now = t0 + table_keys / 1000 + 1;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(p->place(0, keys[i], now));
    if (++i == keys.size()) i = 0;
    if (i % 1000 == 0) ++now;
  }
  const auto& c = p->counters();
  if (c.decisions[0] < static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("not every decision was an affinity hit");
}
BENCHMARK(BM_place_hit)->Arg(4)->Arg(8)->Arg(16)->Unit(benchmark::kNanosecond);

// The same table, but requests go to 10k hot rooms (a working set that fits in cache): the cost
// of a decision without the DRAM miss of a cold entry.
void BM_place_hit_hot(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  auto p = filled(workers);
  auto keys = shuffled_keys(0, table_keys, 44);
  keys.resize(10'000);
  std::uint64_t now = t0 + table_keys / 1000 + 1;
  std::size_t i = 0, n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(p->place(0, keys[i], now));
    if (++i == keys.size()) i = 0;
    if (++n % 1000 == 0) ++now;
  }
}
BENCHMARK(BM_place_hit_hot)->Arg(4)->Arg(16)->Unit(benchmark::kNanosecond);

void BM_place_miss(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  auto p = filled(workers);
  const auto keys = shuffled_keys(table_keys, table_keys, 43);  // never seen
  std::uint64_t now = t0 + table_keys / 1000 + 1;
  std::size_t i = 0;
  const auto hits_before = p->counters().decisions[0];
  for (auto _ : state) {
    benchmark::DoNotOptimize(p->place(0, keys[i], now));
    if (++i % 1000 == 0) ++now;
  }
  if (p->counters().decisions[0] != hits_before) state.SkipWithError("a miss was a hit");
}
// Fixed iterations: each key must be new, and there are 1M of them.
BENCHMARK(BM_place_miss)
    ->Arg(4)
    ->Arg(8)
    ->Arg(16)
    ->Iterations(1'000'000)
    ->Unit(benchmark::kNanosecond);

std::size_t rss_bytes();

// A table of `keys` remembered rooms over `workers` workers, filled 1 ms per 1000 keys, with the
// memory it took.
struct grown {
  std::unique_ptr<placement> p;
  double rss_per_key = 0;
  double table_per_key = 0;
};

grown grow(int workers, std::size_t keys) {
  grown g;
  const std::size_t before = rss_bytes();
  g.p = make(workers, keys);
  for (std::size_t i = 0; i < keys; ++i)
    g.p->place(0, room(i), t0 + i / 1000);
  g.rss_per_key = static_cast<double>(rss_bytes() - before) / static_cast<double>(keys);
  g.table_per_key =
      static_cast<double>(g.p->table().memory_bytes()) / static_cast<double>(g.p->table().size());
  return g;
}

void growth_counters(benchmark::State& state, const grown& g, std::size_t keys) {
  state.counters["keys"] = static_cast<double>(g.p->table().size());
  state.counters["table_B_per_key"] = g.table_per_key;
  state.counters["rss_B_per_key"] = g.rss_per_key;
  if (g.p->table().size() != keys) state.SkipWithError("the table does not hold every key");
}

void BM_growth_hit(benchmark::State& state) {
  const auto keys = static_cast<std::size_t>(state.range(0));
  const int workers = static_cast<int>(state.range(1));
  const grown g = grow(workers, keys);
  const auto order = shuffled_keys(0, keys, 42);
  std::uint64_t now = t0 + keys / 1000 + 1;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(g.p->place(0, order[i], now));
    if (++i == order.size()) i = 0;
    if (i % 1000 == 0) ++now;
  }
  if (g.p->counters().decisions[0] < static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("not every decision was an affinity hit");
  growth_counters(state, g, keys);
}

void BM_growth_miss(benchmark::State& state) {
  const auto keys = static_cast<std::size_t>(state.range(0));
  const int workers = static_cast<int>(state.range(1));
  const grown g = grow(workers, keys);
  const auto fresh = shuffled_keys(keys, std::min<std::size_t>(keys, 1'000'000), 43);
  std::uint64_t now = t0 + keys / 1000 + 1;
  std::size_t i = 0;
  const auto hits_before = g.p->counters().decisions[0];
  for (auto _ : state) {
    benchmark::DoNotOptimize(g.p->place(0, fresh[i], now));
    if (++i == fresh.size()) {
      state.SkipWithError("ran out of fresh keys");
      break;
    }
    if (i % 1000 == 0) ++now;
  }
  if (g.p->counters().decisions[0] != hits_before) state.SkipWithError("a miss was a hit");
  growth_counters(state, g, keys);
}

void growth_args(benchmark::internal::Benchmark* b) {
  for (long keys : {10'000L, 100'000L, 1'000'000L, 10'000'000L})
    b->Args({keys, 4});
  for (long workers : {16L, 64L})
    b->Args({1'000'000L, workers});
}
BENCHMARK(BM_growth_hit)->Apply(growth_args)->Unit(benchmark::kNanosecond);
// Fixed iterations: every key must be new, and the smallest table has only 10k of them.
BENCHMARK(BM_growth_miss)->Apply(growth_args)->Iterations(9'000)->Unit(benchmark::kNanosecond);

std::size_t rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void BM_memory_per_key(benchmark::State& state) {
  for (auto _ : state) {
    const std::size_t before = rss_bytes();
    auto p = filled(16);
    const std::size_t after = rss_bytes();
    state.counters["rss_bytes_per_key"] =
        static_cast<double>(after - before) / static_cast<double>(table_keys);
    state.counters["table_bytes_per_key"] =
        static_cast<double>(p->table().memory_bytes()) / static_cast<double>(p->table().size());
    state.counters["keys"] = static_cast<double>(p->table().size());
  }
}
BENCHMARK(BM_memory_per_key)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
