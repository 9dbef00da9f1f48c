#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "load/model.hpp"

namespace {

using spoa::load::model;
using spoa::load::options;
using spoa::load::scrape;
using spoa::routing::worker_state;

// A fake worker: cumulative counters advanced by rates over fake time, scraped on demand. Tests
// use dyadic rates and tick times (0.75, 1/512, ...) so every delta is exact in binary floating
// point and thresholds can be hit exactly.
struct fake_worker {
  scrape s;
  std::uint64_t now_ms = 0;

  fake_worker() {
    s.cpu_seconds = 1024;
    s.start_time = 1.7e9;
    s.tick_sum = 64;
    s.tick_count = 8192;
    s.sched_sum = 16;
    s.sched_count = 4096;
    s.reactor_last_seen = 0.003;
  }
  // Advances time by dt_ms at `cores` CPU, with `ticks` reactor ticks of `tick_s` seconds each.
  void run(std::uint64_t dt_ms, double cores, double ticks = 128, double tick_s = 1.0 / 256) {
    now_ms += dt_ms;
    s.cpu_seconds += cores * static_cast<double>(dt_ms) / 1000.0;
    s.tick_count += ticks;
    s.tick_sum += ticks * tick_s;
  }
};

options exact(double alpha = 1.0) {
  options o;
  o.ewma_alpha = alpha;  // 1 = no smoothing, so thresholds can be crossed exactly
  return o;
}

TEST(LoadModel, UnknownUntilTwoScrapesGiveDeltas) {
  model m(exact(), 1);
  EXPECT_EQ(m.status(0).state, worker_state::unknown);
  fake_worker w;
  m.on_success(0, w.s, w.now_ms, 0.01);
  EXPECT_EQ(m.status(0).state, worker_state::unknown);
  EXPECT_TRUE(std::isnan(m.status(0).cpu));
  auto v = m.publish(w.now_ms);
  ASSERT_EQ(v->workers.size(), 1u);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_EQ(v->workers[0].capacity, 1.0);
  w.run(2000, 0.25);
  m.on_success(0, w.s, w.now_ms, 0.01);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.25);
}

TEST(LoadModel, DeltasAndEwmaAreExact) {
  model m(exact(0.3), 1);
  fake_worker w;
  w.s.in_flight = 4;
  m.on_success(0, w.s, w.now_ms, 0.01);
  EXPECT_DOUBLE_EQ(m.status(0).in_flight, 4.0);

  w.run(2000, 0.5, 256, 1.0 / 512);
  w.s.sched_count += 128;
  w.s.sched_sum += 0.5;
  w.s.in_flight = 10;
  m.on_success(0, w.s, w.now_ms, 0.02);
  const auto& st = m.status(0);
  EXPECT_DOUBLE_EQ(st.cpu, 0.5);
  EXPECT_DOUBLE_EQ(st.reactor_lag, 1.0 / 512);
  EXPECT_DOUBLE_EQ(st.db_wait, 0.5 / 128);
  EXPECT_DOUBLE_EQ(st.in_flight, 0.3 * 10 + 0.7 * 4);

  w.run(4000, 0.75, 64, 1.0 / 64);
  w.s.sched_count += 16;
  w.s.sched_sum += 1.0;
  w.s.in_flight = 0;
  m.on_success(0, w.s, w.now_ms, 0.03);
  EXPECT_DOUBLE_EQ(st.cpu, 0.3 * 0.75 + 0.7 * 0.5);
  EXPECT_DOUBLE_EQ(st.reactor_lag, 0.3 * (1.0 / 64) + 0.7 * (1.0 / 512));
  EXPECT_DOUBLE_EQ(st.db_wait, 0.3 * (1.0 / 16) + 0.7 * (0.5 / 128));
  EXPECT_DOUBLE_EQ(st.in_flight, 0.3 * 0 + 0.7 * (0.3 * 10 + 0.7 * 4));
  EXPECT_EQ(st.scrapes_ok, 3u);
  EXPECT_EQ(st.last_success_ms, 6000u);
  EXPECT_EQ(st.last_scrape_ms, 6000u);
  EXPECT_EQ(st.last_scrape_seconds, 0.03);
}

TEST(LoadModel, NoTicksNoLagSampleAndAbsentDbWait) {
  model m(exact(), 1);
  fake_worker w;
  w.s.sched_sum = w.s.sched_count = scrape::nan;
  m.on_success(0, w.s, w.now_ms, 0);
  w.run(2000, 0.1, 0);  // no reactor tick completed
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_TRUE(std::isnan(m.status(0).reactor_lag));
  EXPECT_TRUE(std::isnan(m.status(0).db_wait));
  EXPECT_EQ(m.status(0).state, worker_state::healthy);  // cpu alone is enough
}

TEST(LoadModel, CounterDecreaseDropsThatDeltaOnly) {
  model m(exact(0.5), 1);
  fake_worker w;
  m.on_success(0, w.s, w.now_ms, 0);
  w.run(2000, 0.375, 128, 1.0 / 256);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.375);
  EXPECT_DOUBLE_EQ(m.status(0).reactor_lag, 1.0 / 256);

  // The CPU counter goes backwards (reset); the tick histogram does not.
  w.run(2000, 0.0, 128, 1.0 / 64);
  w.s.cpu_seconds = 3.0;
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.375);  // dropped, state kept
  EXPECT_DOUBLE_EQ(m.status(0).reactor_lag, 0.5 * (1.0 / 64) + 0.5 * (1.0 / 256));

  // The next delta is taken from the new baseline.
  w.run(2000, 0.625);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.5 * 0.625 + 0.5 * 0.375);
}

TEST(LoadModel, RestartDropsEveryDeltaAndKeepsState) {
  model m(exact(), 1);
  fake_worker w;
  m.on_success(0, w.s, w.now_ms, 0);
  w.run(2000, 0.9375);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::hot);

  // Restarted: new start time, counters restarted from small values that happen to be higher.
  w.s.start_time += 60;
  w.run(2000, 5.0, 100000, 1.0);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.9375);
  EXPECT_EQ(m.status(0).state, worker_state::hot);

  w.run(2000, 0.125);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.125);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
}

TEST(LoadModel, CpuHysteresisFlipsOnlyAcrossTheBand) {
  options o = exact();
  o.hot_cpu = 0.875;  // dyadic, so "exactly at the threshold" is exact
  o.cool_cpu = 0.6875;
  model m(o, 1);
  fake_worker w;
  m.on_success(0, w.s, w.now_ms, 0);
  struct step {
    double cores;
    worker_state expect;
  };
  const std::vector<step> steps = {
      {0.8125, worker_state::healthy}, {0.8750, worker_state::hot},
      {0.8125, worker_state::hot},     {0.7500, worker_state::hot},
      {0.6875, worker_state::healthy}, {0.8125, worker_state::healthy},
      {0.9375, worker_state::hot},     {0.5000, worker_state::healthy},
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    w.run(1000, steps[i].cores);
    m.on_success(0, w.s, w.now_ms, 0);
    EXPECT_EQ(m.status(0).state, steps[i].expect) << "step " << i << " cpu " << steps[i].cores;
  }
}

TEST(LoadModel, ReactorLagHysteresis) {
  options o = exact();
  o.hot_reactor_lag = 0.0625;
  o.cool_reactor_lag = 0.015625;
  model m(o, 1);
  fake_worker w;
  m.on_success(0, w.s, w.now_ms, 0);
  struct step {
    double tick;
    worker_state expect;
  };
  const std::vector<step> steps = {
      {0.046875, worker_state::healthy}, {0.0625, worker_state::hot},
      {0.03125, worker_state::hot},      {0.015625, worker_state::healthy},
      {0.046875, worker_state::healthy}, {0.125, worker_state::hot},
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    w.run(1000, 0.1, 64, steps[i].tick);
    m.on_success(0, w.s, w.now_ms, 0);
    EXPECT_EQ(m.status(0).state, steps[i].expect) << "step " << i;
  }
}

TEST(LoadModel, InFlightSignalIsOptional) {
  options o = exact();
  fake_worker w;
  w.s.in_flight = 500;
  {
    model m(o, 1);  // hot_in_flight = 0: ignored
    m.on_success(0, w.s, 0, 0);
    m.on_success(0, w.s, 1000, 0);
    EXPECT_EQ(m.status(0).state, worker_state::healthy);
  }
  o.hot_in_flight = 100;  // cool at 75 by default
  model m(o, 1);
  m.on_success(0, w.s, 0, 0);
  m.on_success(0, w.s, 1000, 0);
  EXPECT_EQ(m.status(0).state, worker_state::hot);
  w.s.in_flight = 80;
  m.on_success(0, w.s, 2000, 0);
  EXPECT_EQ(m.status(0).state, worker_state::hot);
  w.s.in_flight = 75;
  m.on_success(0, w.s, 3000, 0);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
}

TEST(LoadModel, DownAfterConsecutiveFailuresAndRecoveryNeedsTwoSuccesses) {
  model m(exact(), std::vector<std::string>{"room1"});
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(2000, 0.25);
  m.on_success(0, w.s, w.now_ms, 0);
  std::vector<std::string> changes;
  m.publish(w.now_ms, &changes);
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "room1: unknown -> healthy (cpu 0.25, lag 0.004 s, in flight 0.0)"}));

  m.on_failure(0, "timeout", 3000, 1.0);
  m.on_failure(0, "timeout", 4000, 1.0);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
  EXPECT_EQ(m.status(0).consecutive_failures, 2);
  w.run(3000, 0.3);
  m.on_success(0, w.s, w.now_ms, 0);  // resets the count
  EXPECT_EQ(m.status(0).consecutive_failures, 0);
  EXPECT_EQ(m.status(0).last_error, "");
  m.on_failure(0, "timeout", 6000, 1.0);
  m.on_failure(0, "timeout", 7000, 1.0);
  m.on_failure(0, "connection refused", 8000, 0.001);
  EXPECT_EQ(m.status(0).state, worker_state::down);
  EXPECT_EQ(m.status(0).capacity, 0.0);
  EXPECT_EQ(m.status(0).scrapes_failed, 5u);
  EXPECT_EQ(m.status(0).last_error, "connection refused");
  changes.clear();
  auto v = m.publish(8000, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::down);
  EXPECT_EQ(v->workers[0].capacity, 0.0);
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "room1: healthy -> down (3 consecutive failures: connection refused)"}));
  // Down is not stale: it stays down however old the last success is.
  EXPECT_EQ(m.publish(1'000'000)->workers[0].state, worker_state::down);

  // First success: still down; the pre-failure smoothed values are cleared.
  w.now_ms = 20000;
  w.s.cpu_seconds += 100;  // whatever happened during the outage is not a delta
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::down);
  EXPECT_TRUE(std::isnan(m.status(0).cpu));
  // A failure in between starts recovery over.
  m.on_failure(0, "timeout", 21000, 1);
  w.now_ms = 22000;
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::down);
  w.run(2000, 0.5);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
  EXPECT_DOUBLE_EQ(m.status(0).cpu, 0.5);
  changes.clear();
  m.publish(w.now_ms, &changes);
  EXPECT_EQ(
      changes,
      (std::vector<std::string>{"room1: down -> healthy (cpu 0.50, lag 0.004 s, in flight 0.0)"}));
}

TEST(LoadModel, DownFromUnknownWithoutAnySuccess) {
  model m(exact(), 2);
  for (int i = 0; i < 3; ++i)
    m.on_failure(1, "dns", 1000u * static_cast<unsigned>(i), 0);
  auto v = m.publish(3000);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_EQ(v->workers[0].capacity, 1.0);
  EXPECT_EQ(v->workers[1].state, worker_state::down);
}

// Issue 18: a reactor that has not run for reactor_stall_after is stalled at once (no new keys,
// keys stay); once it has not run for stall_down_after it is down.
TEST(LoadModel, BlockedReactorIsStalledAtOnceAndDownWhenItPersists) {
  options o = exact();
  o.reactor_stall_after =
      std::chrono::milliseconds{2000};  // the default is 10 s; 2 s keeps the timeline short
  model m(o, std::vector<std::string>{"room1"});
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(2000, 0.2);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
  m.publish(w.now_ms);
  w.s.reactor_last_seen = 1.875;  // under the 2 s threshold: nothing yet
  w.run(500, 0.0, 0);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
  w.s.reactor_last_seen = 2.5;
  w.run(500, 0.0, 0);  // t = 3000: the reactor last ran at 500
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::stalled);
  EXPECT_EQ(m.status(0).stalled_since_ms, 500u);
  EXPECT_EQ(m.status(0).last_error, "reactor blocked for 2.5 s");
  std::vector<std::string> changes;
  auto v = m.publish(w.now_ms, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::stalled);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 0.1);
  EXPECT_EQ(changes, (std::vector<std::string>{"room1: healthy -> stalled (reactor blocked for "
                                               "2.5 s, no sign of life for 2.5 s)"}));
  // 2999 ms without a reactor run: still stalled; 3000 ms: down, without waiting for a scrape.
  EXPECT_EQ(m.publish(3499)->workers[0].state, worker_state::stalled);
  changes.clear();
  v = m.publish(3500, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::down);
  EXPECT_EQ(v->workers[0].capacity, 0.0);
  EXPECT_EQ(changes, (std::vector<std::string>{"room1: stalled -> down (no sign of life for "
                                               "3.0 s: reactor blocked for 2.5 s)"}));
  EXPECT_EQ(m.status(0).scrapes_failed, 0u);  // the scrapes themselves worked
}

TEST(LoadModel, LongBlockedReactorIsDownAtOnce) {
  model m(exact(), 1);
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(2000, 0.2);
  m.on_success(0, w.s, w.now_ms, 0);
  w.s.reactor_last_seen = 12.5;
  w.run(2000, 0.0, 0);
  m.on_success(0, w.s, w.now_ms, 0);
  EXPECT_EQ(m.status(0).state, worker_state::down);
}

// Issue 18: a scrape that times out (a stopped process accepts and never answers) is stall
// evidence: stalled at once, down stall_down_after after the last successful scrape.
TEST(LoadModel, TimeoutIsStalledAtOnceAndDownAfterTheWindow) {
  options o = exact();
  o.down_after_failures = 100;  // only the window decides here
  model m(o, std::vector<std::string>{"room3"});
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(1000, 0.25);
  m.on_success(0, w.s, 1000, 0.01);  // last sign of life
  m.publish(1000);
  m.on_failure(0, "timed out", 2750, 0.75, model::failure::timeout);  // began at 2000
  EXPECT_EQ(m.status(0).state, worker_state::stalled);
  EXPECT_TRUE(m.status(0).stalled);
  EXPECT_EQ(m.status(0).stalled_since_ms, 1000u);
  EXPECT_EQ(m.status(0).consecutive_failures, 1);
  std::vector<std::string> changes;
  auto v = m.publish(2750, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::stalled);
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "room3: healthy -> stalled (timed out, no sign of life for 1.8 s)"}));
  EXPECT_EQ(m.publish(3999)->workers[0].state, worker_state::stalled);
  changes.clear();
  v = m.publish(4000, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::down);
  EXPECT_EQ(
      changes,
      (std::vector<std::string>{"room3: stalled -> down (no sign of life for 3.0 s: timed out)"}));
  // A timeout while down keeps it down; recovery is the usual two successes.
  m.on_failure(0, "timed out", 4500, 0.75, model::failure::timeout);
  EXPECT_EQ(m.status(0).state, worker_state::down);
  w.now_ms = 6000;
  m.on_success(0, w.s, w.now_ms, 0.01);
  EXPECT_EQ(m.status(0).state, worker_state::down);
  EXPECT_FALSE(m.status(0).stalled);
  w.run(1000, 0.25);
  m.on_success(0, w.s, w.now_ms, 0.01);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);
}

TEST(LoadModel, StalledWorkerThatAnswersIsBackAtOnce) {
  model m(exact(), 2);
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(1000, 0.25);
  m.on_success(0, w.s, 1000, 0);
  m.on_failure(0, "timed out", 2750, 0.75, model::failure::timeout);
  EXPECT_EQ(m.status(0).state, worker_state::stalled);
  w.run(2000, 0.25);  // t = 3000, inside the window
  m.on_success(0, w.s, w.now_ms, 0.3);
  EXPECT_EQ(m.status(0).state, worker_state::healthy);  // never down: one answer is enough
  EXPECT_FALSE(m.status(0).stalled);
  EXPECT_EQ(m.status(0).consecutive_failures, 0);
  EXPECT_EQ(m.publish(10'000)->workers[0].state, worker_state::healthy);
  w.run(7000, 0.25);
  m.on_success(0, w.s, w.now_ms, 0.01);  // t = 10000

  // An answer that is not usable metrics also proves the process runs: no longer stalled.
  m.on_failure(0, "timed out", 10'750, 0.75, model::failure::timeout);
  m.on_failure(0, "HTTP 500", 11'800, 0.05, model::failure::unusable);
  auto v = m.publish(20'000);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_FALSE(m.status(0).stalled);

  // Without any earlier success, the stall dates from the start of the timed-out scrape.
  m.on_failure(1, "connect timed out", 1750, 0.75, model::failure::timeout);
  EXPECT_EQ(m.status(1).stalled_since_ms, 1000u);
  EXPECT_EQ(m.publish(3999)->workers[1].state, worker_state::stalled);
  EXPECT_EQ(m.publish(4000)->workers[1].state, worker_state::down);
}

TEST(LoadModel, TimeoutsCountTowardDownAfterFailures) {
  options o = exact();
  o.down_after_failures = 2;
  o.stall_down_after = std::chrono::milliseconds{60'000};
  model m(o, 1);
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(1000, 0.25);
  m.on_success(0, w.s, 1000, 0);
  m.on_failure(0, "timed out", 2000, 0.25, model::failure::timeout);
  EXPECT_EQ(m.status(0).state, worker_state::stalled);
  m.on_failure(0, "connect: Connection refused", 2300, 0, model::failure::unreachable);
  EXPECT_EQ(m.status(0).state, worker_state::down);
}

TEST(LoadModel, CapacityMapping) {
  options o = exact();
  o.hot_cpu = 1.0;  // u = cpu
  o.cool_cpu = 0.75;
  model m(o, 4);
  fake_worker w[4];
  const double cores[4] = {0.375, 0.75, 0.9375, 1.0};
  for (std::size_t i = 0; i < 4; ++i) {
    m.on_success(i, w[i].s, 0, 0);
    w[i].run(1000, cores[i], 128, 1.0 / 512);  // lag u = 0.039
    m.on_success(i, w[i].s, 1000, 0);
  }
  auto v = m.publish(1000);
  EXPECT_EQ(v->workers[0].state, worker_state::healthy);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 1.0);               // under the knee: nominal, not more
  EXPECT_DOUBLE_EQ(v->workers[1].capacity, 1.0 - 0.5 * 0.75);  // halfway down the slope
  EXPECT_DOUBLE_EQ(v->workers[2].capacity, 1.0 - 0.875 * 0.75);  // near capacity_at_hot
  EXPECT_EQ(v->workers[3].state, worker_state::hot);
  EXPECT_DOUBLE_EQ(v->workers[3].capacity, 0.1);
  for (std::size_t i = 0; i + 1 < 4; ++i) {
    EXPECT_GE(v->workers[i].capacity, v->workers[i + 1].capacity) << "monotone";
  }
}

TEST(LoadModel, AllHotStillShare) {
  model m(exact(), 3);
  for (std::size_t i = 0; i < 3; ++i) {
    fake_worker w;
    m.on_success(i, w.s, 0, 0);
    w.run(1000, 0.99);
    m.on_success(i, w.s, 1000, 0);
  }
  auto v = m.publish(1000);
  for (const auto& wl : v->workers) {
    EXPECT_EQ(wl.state, worker_state::hot);
    EXPECT_GT(wl.capacity, 0.0);
  }
}

TEST(LoadModel, StaleDataDecaysTowardNeutral) {
  model m(exact(), std::vector<std::string>{"room2"});
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(2000, 0.9375);
  m.on_success(0, w.s, w.now_ms, 0);
  std::vector<std::string> changes;
  auto v = m.publish(2000, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::hot);
  EXPECT_EQ(
      changes,
      (std::vector<std::string>{"room2: unknown -> hot (cpu 0.94, lag 0.004 s, in flight 0.0)"}));

  // Exactly stale_after (10 s) old: still fresh.
  v = m.publish(12000);
  EXPECT_EQ(v->workers[0].state, worker_state::hot);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 0.1);

  // One half-life past it: halfway back to 1; the state no longer claims to know.
  changes.clear();
  v = m.publish(22000, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 1.0 + (0.1 - 1.0) * 0.5);
  EXPECT_EQ(changes,
            (std::vector<std::string>{"room2: hot -> unknown (no successful scrape for 20.0 s)"}));
  EXPECT_EQ(m.status(0).state, worker_state::unknown);
  v = m.publish(42000);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 1.0 + (0.1 - 1.0) * 0.125);

  // A fresh scrape brings the measured state back (hysteresis continues from hot).
  w.now_ms = 44000;
  w.s.cpu_seconds += 0.8 * 42;
  m.on_success(0, w.s, w.now_ms, 0);
  changes.clear();
  v = m.publish(44000, &changes);
  EXPECT_EQ(v->workers[0].state, worker_state::hot);
  EXPECT_EQ(changes.size(), 1u);
}

TEST(LoadModel, FailuresBelowTheDownThresholdGoStaleNotDown) {
  options o = exact();
  o.down_after_failures = 100;
  model m(o, 1);
  fake_worker w;
  m.on_success(0, w.s, 0, 0);
  w.run(1000, 0.2);
  m.on_success(0, w.s, 1000, 0);
  for (std::uint64_t t = 2000; t <= 30000; t += 1000)
    m.on_failure(0, "timeout", t, 1.0);
  auto v = m.publish(31000);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, 1.0);  // healthy at u < knee was already 1
}

// Issue 9: a worker whose metrics are garbage or too big (it answered: it is alive) is `unknown`
// — never down, so its keys stay — while unreachable workers still go down. (A scrape that times
// out is stall evidence since issue 18: see TimeoutIsStalledAtOnceAndDownAfterTheWindow.)
TEST(LoadModel, UnusableScrapesMakeTheLoadUnknownNeverDown) {
  options o = exact();
  o.down_after_failures = 2;
  model m(o, 2);
  fake_worker w;
  for (std::size_t i = 0; i < 2; ++i)
    m.on_success(i, w.s, 0, 0);
  w.run(1000, 0.8);  // cpu 0.8: healthy, but past the capacity knee (capacity < 1)
  for (std::size_t i = 0; i < 2; ++i)
    m.on_success(i, w.s, 1000, 0);
  const double fresh = m.publish(1000)->workers[0].capacity;
  ASSERT_LT(fresh, 1.0);
  for (std::uint64_t t = 2000; t <= 10000; t += 1000) {
    m.on_failure(0, "HTTP 503", t, 1.0, model::failure::unusable);
    m.on_failure(1, "connect: refused", t, 0.0, model::failure::unreachable);
  }
  auto v = m.publish(10000);
  EXPECT_EQ(v->workers[0].state, worker_state::unknown);
  EXPECT_EQ(v->workers[1].state, worker_state::down);
  EXPECT_EQ(v->workers[1].capacity, 0.0);
  EXPECT_EQ(m.status(0).consecutive_failures, 0);
  EXPECT_EQ(m.status(0).scrapes_failed, 9u);
  // Capacity heads back toward neutral, never jumps to the idle-looking extreme.
  EXPECT_GE(v->workers[0].capacity, fresh);
  EXPECT_LE(v->workers[0].capacity, 1.0);
  // A good scrape makes it known again (no two-success rule: it was never down).
  w.run(1000, 0.2);
  m.on_success(0, w.s, 11000, 0);
  EXPECT_EQ(m.publish(11000)->workers[0].state, worker_state::healthy);
}

TEST(LoadModel, OutOfRangeIndexesAreIgnored) {
  model m(exact(), 1);
  scrape s;
  m.on_success(5, s, 0, 0);
  m.on_failure(5, "x", 0, 0);
  EXPECT_EQ(m.status(5).scrapes_ok, 0u);
  EXPECT_EQ(m.status(0).scrapes_ok, 0u);
  EXPECT_EQ(m.publish(0)->workers.size(), 1u);
}

TEST(LoadModel, SnapshotsAreIndependent) {
  model m(exact(), 1);
  auto before = m.publish(0);
  for (int i = 0; i < 3; ++i)
    m.on_failure(0, "x", 0, 0);
  auto after = m.publish(0);
  EXPECT_EQ(before->workers[0].state, worker_state::unknown);
  EXPECT_EQ(after->workers[0].state, worker_state::down);
}

// The database-threads signal: off by default (it is reported, never heats); with hot_db_busy
// set, a worker whose database threads are all busy is hot, and cools below cool_db_busy.
TEST(LoadModel, BusyDatabaseThreadsMakeAWorkerHotOnlyWhenConfigured) {
  fake_worker w;
  w.s.db_threads_total = 4;
  w.s.db_threads_working = 4;
  {
    model m(exact(), std::vector<std::string>{"room1"});
    m.on_success(0, w.s, 0, 0);
    w.run(2000, 0.25);
    m.on_success(0, w.s, w.now_ms, 0);
    EXPECT_EQ(m.status(0).db_busy, 1.0);
    EXPECT_EQ(m.publish(w.now_ms)->workers[0].state, worker_state::healthy);
  }
  options o = exact();
  o.hot_db_busy = 0.75;
  model m(o, std::vector<std::string>{"room1"});
  fake_worker v = w;
  m.on_success(0, v.s, v.now_ms, 0);
  v.run(2000, 0.25);
  m.on_success(0, v.s, v.now_ms, 0);
  std::vector<std::string> changes;
  EXPECT_EQ(m.publish(v.now_ms, &changes)->workers[0].state, worker_state::hot);
  EXPECT_EQ(changes,
            (std::vector<std::string>{
                "room1: unknown -> hot (cpu 0.25, lag 0.004 s, in flight 0.0, db busy 1.00)"}));
  // Between the bands (cool = 0.75 x 0.75 = 0.5625): stays hot; at half busy: healthy again.
  v.s.db_threads_working = 3;
  v.run(2000, 0.25);
  m.on_success(0, v.s, v.now_ms, 0);
  EXPECT_EQ(m.publish(v.now_ms)->workers[0].state, worker_state::hot);
  v.s.db_threads_working = 2;
  v.run(2000, 0.25);
  m.on_success(0, v.s, v.now_ms, 0);
  EXPECT_EQ(m.publish(v.now_ms)->workers[0].state, worker_state::healthy);
}

}  // namespace
