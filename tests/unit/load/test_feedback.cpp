#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "load/feedback.hpp"
#include "load/model.hpp"

namespace {

using spoa::load::feedback;
using spoa::load::feedback_options;
using spoa::load::response_sample;

// Four workers in pool 0 (a room pool), one in pool 1 alone; two rules.
feedback make(feedback_options o = {}) {
  return feedback(o, {0, 0, 0, 0, 1}, 2);
}

response_sample sample(std::size_t worker, std::size_t rule, double seconds, int status = 200) {
  response_sample s;
  s.worker = worker;
  s.rule = rule;
  s.seconds = seconds;
  s.status = status;
  return s;
}

TEST(Feedback, StatusClasses) {
  EXPECT_EQ(spoa::load::status_class(200), 1);
  EXPECT_EQ(spoa::load::status_class(503), 4);
  EXPECT_EQ(spoa::load::status_class(99), -1);
  EXPECT_EQ(spoa::load::status_class(600), -1);
  EXPECT_EQ(spoa::load::status_class_name(4), "5xx");
}

TEST(Feedback, PeakEwmaTakesPeaksAtOnceAndDecaysBelowThem) {
  feedback_options o;
  o.latency_min_samples = 1;
  auto f = make(o);
  ASSERT_TRUE(f.record(sample(0, 0, 0.020), 1000));
  EXPECT_DOUBLE_EQ(f.cost(0, 0, 1000), 0.020);
  ASSERT_TRUE(f.record(sample(0, 0, 0.500), 1100));  // a peak replaces the estimate
  EXPECT_DOUBLE_EQ(f.cost(0, 0, 1100), 0.500);
  // One decay time later a fast sample pulls it 1 - 1/e of the way down.
  ASSERT_TRUE(f.record(sample(0, 0, 0.020), 11100));
  const double w = std::exp(-1.0);
  EXPECT_NEAR(f.cost(0, 0, 11100), 0.5 * w + 0.02 * (1 - w), 1e-12);
  // Not fresh more than 3 decay times after its last sample.
  EXPECT_TRUE(std::isnan(f.cost(0, 0, 11100 + 30001)));
}

TEST(Feedback, LongPollsAndBadInputCountNoTime) {
  feedback_options o;
  o.latency_min_samples = 1;
  auto f = make(o);
  auto lp = sample(1, 0, 30.0);
  lp.long_poll = true;
  EXPECT_TRUE(f.record(lp, 1000));
  EXPECT_TRUE(std::isnan(f.cost(1, 0, 1000)));
  EXPECT_FALSE(f.record(sample(9, 0, 0.1), 1000));      // no such worker
  EXPECT_FALSE(f.record(sample(1, 7, 0.1), 1000));      // no such rule
  EXPECT_FALSE(f.record(sample(1, 0, 0.1, 42), 1000));  // not an HTTP status
  EXPECT_TRUE(f.record(sample(1, 0, NAN), 1000));       // counted, no time
  EXPECT_TRUE(std::isnan(f.cost(1, 0, 1000)));
}

TEST(Feedback, SlowWorkerStandsOutOfItsPoolRuleByRule) {
  auto f = make();
  std::uint64_t t = 1000;
  // Rule 0 is fast everywhere (20 ms), rule 1 slow everywhere (400 ms); worker 2 takes 10x.
  for (int i = 0; i < 20; ++i, t += 100) {
    for (std::size_t w = 0; w < 4; ++w) {
      const double k = w == 2 ? 10 : 1;
      f.record(sample(w, 0, 0.020 * k), t);
      f.record(sample(w, 1, 0.400 * k), t);
    }
  }
  // The others: rule 0 at the 50 ms floor (20 ms / 50 ms = 0.4), rule 1 at 1.
  EXPECT_NEAR(f.latency_ratio(0, t), (0.4 + 1.0) / 2, 1e-9);
  // Worker 2: rule 0 is 200 ms / 50 ms = 4, rule 1 is 10 (each against the others' median).
  EXPECT_NEAR(f.latency_ratio(2, t), (4.0 + 10.0) / 2, 1e-9);
  // A pool of one has nothing to compare with.
  f.record(sample(4, 0, 5.0), t);
  EXPECT_TRUE(std::isnan(f.latency_ratio(4, t)));
}

TEST(Feedback, TooFewSamplesDoNotCount) {
  auto f = make();  // latency_min_samples 5
  std::uint64_t t = 1000;
  for (int i = 0; i < 10; ++i, t += 10)
    f.record(sample(0, 0, 0.02), t);
  for (int i = 0; i < 2; ++i, t += 10)
    f.record(sample(1, 0, 3.0), t);  // one slow request or two: not yet a slow worker
  EXPECT_TRUE(std::isnan(f.latency_ratio(1, t)));
  for (int i = 0; i < 5; ++i, t += 10)
    f.record(sample(1, 0, 3.0), t);
  EXPECT_NEAR(f.latency_ratio(1, t), feedback::ratio_cap, 1e-9);  // 60x, capped
}

TEST(Feedback, MisrouteIsTheCellFarAboveTheRest) {
  feedback_options o;
  o.misroute_interval = std::chrono::milliseconds(10'000);
  auto f = make(o);
  std::uint64_t t = 1000;
  bool scanned = true;
  EXPECT_TRUE(f.scan(t, &scanned).empty());
  EXPECT_FALSE(scanned);
  for (int i = 0; i < 50; ++i) {
    auto ok = sample(static_cast<std::size_t>(i % 4), 0, 0.02);
    ok.weight = 20;  // 5 % sampling
    f.record(ok, t + 10 * static_cast<std::uint64_t>(i));
  }
  f.record(sample(3, 0, 0.02, 502), t + 600);  // a remote server down: one 5xx here and there
  for (int i = 0; i < 6; ++i)
    f.record(sample(1, 1, 0.01, 500), t + 700 + static_cast<std::uint64_t>(i));  // every one
  EXPECT_TRUE(f.scan(t + 5000, &scanned).empty());
  EXPECT_FALSE(scanned);  // the interval is not over
  const auto suspects = f.scan(t + 10'000, &scanned);
  EXPECT_TRUE(scanned);
  ASSERT_EQ(suspects.size(), 1u);
  EXPECT_EQ(suspects[0].rule, 1u);
  EXPECT_EQ(suspects[0].worker, 1u);
  EXPECT_DOUBLE_EQ(suspects[0].errors, 6);
  EXPECT_DOUBLE_EQ(suspects[0].share, 1.0);
  EXPECT_NEAR(suspects[0].rest_share, 1.0 / 1001.0, 1e-12);
  // The window starts again: nothing new, nothing reported.
  EXPECT_TRUE(f.scan(t + 20'000, &scanned).empty());
  EXPECT_TRUE(scanned);
}

TEST(Feedback, FewErrorsOrAnEvenShareAreNoMisroute) {
  auto f = make();
  std::uint64_t t = 1000;
  f.scan(t);
  for (int i = 0; i < 4; ++i)
    f.record(sample(0, 1, 0.01, 500), t + 1);  // below misroute_min_errors
  // Every worker fails half its requests on rule 0: a broken database, not a route.
  for (std::size_t w = 0; w < 4; ++w) {
    for (int i = 0; i < 10; ++i) {
      f.record(sample(w, 0, 0.01, 200), t + 2);
      f.record(sample(w, 0, 0.01, 500), t + 2);
    }
  }
  EXPECT_TRUE(f.scan(t + 10'000).empty());
}

// The model's latency signal: a healthy worker becomes hot on the ratio alone, at once, and cools
// with hysteresis; NaN neither heats nor keeps hot.
TEST(LoadModelLatency, RatioMakesHotAndCoolsWithHysteresis) {
  spoa::load::options o;
  spoa::load::model m(o, 1);
  spoa::load::scrape s;
  s.cpu_seconds = 10;
  s.tick_sum = 1;
  s.tick_count = 100;
  s.reactor_last_seen = 0.01;
  m.on_success(0, s, 1000, 0.01);
  s.cpu_seconds += 0.1;
  s.tick_sum += 0.01;
  s.tick_count += 100;
  m.on_success(0, s, 2000, 0.01);
  EXPECT_EQ(m.publish(2000)->workers[0].state, spoa::routing::worker_state::healthy);
  m.set_latency(0, 5.0);  // >= hot_latency_ratio 4
  auto v = m.publish(2100);
  EXPECT_EQ(v->workers[0].state, spoa::routing::worker_state::hot);
  EXPECT_DOUBLE_EQ(v->workers[0].capacity, o.hot_capacity);
  m.set_latency(0, 3.0);  // between the bands: stays hot
  EXPECT_EQ(m.publish(2200)->workers[0].state, spoa::routing::worker_state::hot);
  m.set_latency(0, NAN);  // no samples: does not keep it hot
  EXPECT_EQ(m.publish(2300)->workers[0].state, spoa::routing::worker_state::healthy);
  m.set_latency(0, 3.0);  // healthy: below hot, capacity scaled by u = 3 / 4
  v = m.publish(2400);
  EXPECT_EQ(v->workers[0].state, spoa::routing::worker_state::healthy);
  EXPECT_LT(v->workers[0].capacity, 1.0);
  EXPECT_GT(v->workers[0].capacity, o.capacity_at_hot);
}

}  // namespace
