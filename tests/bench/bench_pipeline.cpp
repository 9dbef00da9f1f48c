// The agent's hot path, step by step and whole, through the real code: spop::connection (frame
// decode, NOTIFY validation, ACK encode), decision::handler, decision::router (route table +
// placement with the embedded reference config).
//
//   bench_pipeline --benchmark_repetitions=3 --benchmark_display_aggregates_only=true
//
// Every benchmark processes one message per iteration, so "Time" is ns per step or per message;
// the `allocs/msg` counter is operator-new calls per message (global operator new is replaced by
// the project's counting one, tests/support/alloc_counter). Target (issue 8): zero allocations
// on the affinity-hit path.
//
//   decode          decode_frame + notify_reader over a realistic NOTIFY (6 args)
//   classify        route_table::classify of the decoded request
//   place_hit       placement of a remembered key (the mix's rooms/users/origins, pre-warmed)
//   place_miss      placement of a never-seen room (the table full at max_keys: evicts the LRU)
//   encode_ack      ACK with backend, server, pool, key_hash set-vars
//   message_hit     connection::on_bytes on one NOTIFY frame -> one ACK frame (warm keys)
//   message_miss    the same with a never-seen room ID in every message
//   message_batch20 20 pipelined NOTIFYs per on_bytes call (one read of a busy HAProxy conn.)
//   message_noop    --noop mode: fixed route, so this is the SPOP codec alone
//
// SPOA_BENCH_SHARED=1: placement records changes for the shared affinity store as the agent does
// with `shared.redis` set (agent/shared_store.hpp); the miss benchmarks drain the list the way
// the store's 10 ms tick does. Run with and without, side by side, for the store's hot-path cost.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "agent/clock.hpp"
#include "config/load.hpp"
#include "decision/handler.hpp"
#include "decision/router.hpp"
#include "request_mix.hpp"
#include "spop/connection.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "spop/message.hpp"
#include "support/alloc_counter.hpp"

namespace {

using namespace spoa;

constexpr std::size_t mix_size = 4096;  // power of two
constexpr std::uint64_t t0_ms = 1'000'000;

const std::vector<bench::mix_request>& mix() {
  static const auto m = bench::request_mix(42).take(mix_size);
  return m;
}

// The NOTIFY frame of one request, as HAProxy 2.6 writes it (stream-id, frame-id 1).
void encode_request(std::string& out, const bench::mix_request& r, std::uint64_t sid) {
  static const char src[4] = {10, 0, 0, 7};
  auto str_or_null = [](const std::string& s) {
    return s.empty() ? spop::typed_value::make_null() : spop::typed_value::make_string(s);
  };
  const spop::arg args[] = {
      {"method", spop::typed_value::make_string(r.method)},
      {"path", spop::typed_value::make_string(r.path)},
      {"query", str_or_null(r.query)},
      {"user", str_or_null(r.user)},
      {"origin", str_or_null(r.origin)},
      {"src", spop::typed_value::make_ipv4(std::string_view(src, 4))},
  };
  const spop::notify_message msg{"route", args};
  spop::encode_notify(out, sid, 1, std::span<const spop::notify_message>(&msg, 1));
}

std::vector<std::string> frames() {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < mix_size; ++i) {
    std::string f;
    encode_request(f, mix()[i], i + 1);
    v.push_back(std::move(f));
  }
  return v;
}

routing::request to_request(const bench::mix_request& r) {
  return {r.method, r.path, r.query, r.user, r.origin};
}

decision::router& warm_router() {
  static decision::router* r = [] {
    auto* rt = new decision::router(config::default_config());
    if (std::getenv("SPOA_BENCH_SHARED")) rt->placement().record_changes(true);
    routing::key_buffer kb;
    for (const auto& m : mix())
      rt->decide(to_request(m), kb, t0_ms);
    return rt;
  }();
  return *r;
}

// A connection past its HELLO, with its handler.
struct live_connection {
  decision::handler handler;
  spop::connection conn;
  std::string out;
  explicit live_connection(decision::router& r, bool noop = false)
      : handler(&r, &agent::now_ns), conn(spop::connection_options{16380}, handler) {
    handler.set_noop(noop);
    std::string hello;
    spop::encode_haproxy_hello(hello, {"2.0", 16380, "pipelining", "bench", false});
    conn.on_bytes(spop::as_bytes(hello), out);
    out.clear();
    out.reserve(1 << 16);
  }
};

void report(benchmark::State& state, std::uint64_t allocs0) {
  const auto n = static_cast<double>(state.iterations());
  state.counters["allocs/msg"] = static_cast<double>(spoa::test::allocations() - allocs0) / n;
  state.SetItemsProcessed(state.iterations());
}

void decode(benchmark::State& state) {
  const auto fs = frames();
  spop::message_view msg;
  std::size_t i = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    const auto& f = fs[i++ & (mix_size - 1)];
    const auto r = spop::decode_frame(spop::as_bytes(f), 16380);
    spop::notify_reader rd(r.frame.payload);
    rd.next(msg);
    benchmark::DoNotOptimize(msg.string_arg("path").data());
  }
  report(state, a0);
}
BENCHMARK(decode);

void classify(benchmark::State& state) {
  auto& rt = warm_router();
  std::vector<routing::request> reqs;
  for (const auto& m : mix())
    reqs.push_back(to_request(m));
  routing::key_buffer kb;
  std::size_t i = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    const auto c = rt.table().classify(reqs[i++ & (mix_size - 1)], kb);
    benchmark::DoNotOptimize(c.pool);
  }
  report(state, a0);
}
BENCHMARK(classify);

// Classified keys of the mix, so that place() alone is timed.
struct keyed {
  int pool;
  std::string key;
};
std::vector<keyed> classified() {
  auto& rt = warm_router();
  std::vector<keyed> v;
  routing::key_buffer kb;
  for (const auto& m : mix()) {
    const auto c = rt.table().classify(to_request(m), kb);
    v.push_back({c.pool, std::string(c.key)});
  }
  return v;
}

void place_hit(benchmark::State& state) {
  auto& rt = warm_router();
  const auto ks = classified();
  std::size_t i = 0;
  std::uint64_t now = t0_ms;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    const auto& k = ks[i++ & (mix_size - 1)];
    if ((i & 1023) == 0) ++now;  // ~1M decisions/s
    const auto d = rt.placement().place(k.pool, k.key, now);
    benchmark::DoNotOptimize(d.worker);
  }
  report(state, a0);
}
BENCHMARK(place_hit);

void place_miss(benchmark::State& state) {
  auto& rt = warm_router();
  const int room_pool = [&] {
    const auto& names = rt.table().pool_names();
    for (std::size_t p = 0; p < names.size(); ++p)
      if (names[p] == "room") return static_cast<int>(p);
    return 0;
  }();
  char key[64];
  static std::uint64_t serial = 0;  // keys never repeat across repetitions either
  std::uint64_t now = t0_ms + 10;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    const int n = std::snprintf(key, sizeof key, "!miss%llu:example.org",
                                static_cast<unsigned long long>(++serial));
    if ((serial & 1023) == 0) ++now;
    const auto d =
        rt.placement().place(room_pool, std::string_view(key, static_cast<std::size_t>(n)), now);
    benchmark::DoNotOptimize(d.worker);
    if (rt.placement().changes().size() >= 4096) rt.placement().clear_changes();
  }
  report(state, a0);
}
BENCHMARK(place_miss);

void encode_ack(benchmark::State& state) {
  std::string out;
  out.reserve(4096);
  std::uint64_t sid = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    out.clear();
    spop::ack_builder ack(out, ++sid, 1, 16380);
    ack.set_var(spop::scope::txn, "backend", "synapse_room");
    ack.set_var(spop::scope::txn, "server", "room3");
    ack.set_var(spop::scope::txn, "pool", "room");
    ack.set_var(spop::scope::txn, "key_hash", "0123456789abcdef");
    ack.finish();
    benchmark::DoNotOptimize(out.data());
  }
  report(state, a0);
}
BENCHMARK(encode_ack);

void message_hit(benchmark::State& state) {
  live_connection lc(warm_router());
  const auto fs = frames();
  std::size_t i = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    lc.out.clear();
    lc.conn.on_bytes(spop::as_bytes(fs[i++ & (mix_size - 1)]), lc.out);
    benchmark::DoNotOptimize(lc.out.data());
  }
  if (lc.conn.closing()) state.SkipWithError("connection closed");
  report(state, a0);
}
BENCHMARK(message_hit);

void message_miss(benchmark::State& state) {
  live_connection lc(warm_router());
  static std::uint64_t serial = 0;
  bench::mix_request r{"GET", "", "dir=b&limit=30", "dXNlcjE", "", "room"};
  std::string frame;
  frame.reserve(512);
  r.path.reserve(128);
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    // Building the unique frame is part of the timing (~40 ns), and allocation-free here.
    char room[64];
    const int n = std::snprintf(room, sizeof room, "!fresh%llu%%3Aexample.org",
                                static_cast<unsigned long long>(++serial));
    r.path.assign("/_matrix/client/v3/rooms/");
    r.path.append(room, static_cast<std::size_t>(n));
    r.path.append("/messages");
    frame.clear();
    encode_request(frame, r, serial);
    lc.out.clear();
    lc.conn.on_bytes(spop::as_bytes(frame), lc.out);
    benchmark::DoNotOptimize(lc.out.data());
    if (warm_router().placement().changes().size() >= 4096)
      warm_router().placement().clear_changes();
  }
  if (lc.conn.closing()) state.SkipWithError("connection closed");
  report(state, a0);
}
BENCHMARK(message_miss);

void message_batch20(benchmark::State& state) {
  live_connection lc(warm_router());
  const auto fs = frames();
  std::vector<std::string> batches;
  for (std::size_t b = 0; b < mix_size / 20; ++b) {
    std::string s;
    for (std::size_t k = 0; k < 20; ++k)
      s += fs[b * 20 + k];
    batches.push_back(std::move(s));
  }
  std::size_t i = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    lc.out.clear();
    lc.conn.on_bytes(spop::as_bytes(batches[i++ % batches.size()]), lc.out);
    benchmark::DoNotOptimize(lc.out.data());
  }
  if (lc.conn.closing()) state.SkipWithError("connection closed");
  const auto n = static_cast<double>(state.iterations()) * 20;
  state.counters["allocs/msg"] = static_cast<double>(spoa::test::allocations() - a0) / n;
  state.counters["ns/msg"] =
      benchmark::Counter(n, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
}
BENCHMARK(message_batch20);

void message_noop(benchmark::State& state) {
  live_connection lc(warm_router(), true);
  const auto fs = frames();
  std::size_t i = 0;
  const auto a0 = spoa::test::allocations();
  for (auto _ : state) {
    lc.out.clear();
    lc.conn.on_bytes(spop::as_bytes(fs[i++ & (mix_size - 1)]), lc.out);
    benchmark::DoNotOptimize(lc.out.data());
  }
  report(state, a0);
}
BENCHMARK(message_noop);

}  // namespace

BENCHMARK_MAIN();
