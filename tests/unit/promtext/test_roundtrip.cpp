// Round trip against prometheus-cpp's TextSerializer: metrics are built with prometheus-cpp,
// serialized, parsed, and every sample is compared with what the serializer was given.
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "promtext/parser.hpp"

namespace {

// One sample in canonical form: le/quantile moved out of the label map as numbers.
struct row {
  std::string name;
  std::map<std::string, std::string> labels;
  double bound = 0;  // le or quantile, 0 when absent
  double value = 0;
  std::int64_t timestamp_ms = 0;

  auto key() const { return std::tie(name, labels, bound); }
  bool operator<(const row& o) const { return key() < o.key(); }
};

class collector : public spoa::promtext::sink {
 public:
  std::vector<row> rows;
  bool wants(std::string_view) override { return true; }
  void on_sample(const spoa::promtext::sample& s) override {
    row r;
    r.name = std::string(s.family);
    for (const auto& l : s.labels) {
      if (l.name == "le" || l.name == "quantile") {
        EXPECT_TRUE(spoa::promtext::parse_value(l.value, r.bound)) << l.value;
        continue;
      }
      r.labels[std::string(l.name)] = spoa::promtext::unescape_label_value(l.value);
    }
    r.value = s.value;
    r.timestamp_ms = s.has_timestamp ? s.timestamp_ms : 0;
    rows.push_back(std::move(r));
  }
};

// What the text serializer writes for v: max_digits10 - 1 significant digits
// (core/src/text_serializer.cc), so that is the value a correct parser must return.
double as_serialized(double v) {
  if (!std::isfinite(v)) return v;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", std::numeric_limits<double>::max_digits10 - 1, v);
  return std::strtod(buf, nullptr);
}

std::vector<row> expected_rows(const std::vector<prometheus::MetricFamily>& families) {
  std::vector<row> out;
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      row base;
      for (const auto& l : m.label)
        base.labels[l.name] = l.value;
      base.timestamp_ms = m.timestamp_ms;
      auto add = [&](std::string name, double value, double bound = 0) {
        row r = base;
        r.name = std::move(name);
        r.value = as_serialized(value);
        r.bound = bound;
        out.push_back(std::move(r));
      };
      switch (f.type) {
        case prometheus::MetricType::Counter:
          add(f.name, m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          add(f.name, m.gauge.value);
          break;
        case prometheus::MetricType::Untyped:
          add(f.name, m.untyped.value);
          break;
        case prometheus::MetricType::Summary:
          add(f.name + "_count", static_cast<double>(m.summary.sample_count));
          add(f.name + "_sum", m.summary.sample_sum);
          for (const auto& q : m.summary.quantile)
            add(f.name, q.value, q.quantile);
          break;
        case prometheus::MetricType::Histogram:
          add(f.name + "_count", static_cast<double>(m.histogram.sample_count));
          add(f.name + "_sum", m.histogram.sample_sum);
          for (const auto& b : m.histogram.bucket) {
            add(f.name + "_bucket", static_cast<double>(b.cumulative_count), b.upper_bound);
          }
          break;
        default:
          ADD_FAILURE() << "unexpected type";
          break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void expect_round_trip(const std::vector<prometheus::MetricFamily>& families,
                       std::size_t expected_samples) {
  const std::string text = prometheus::TextSerializer{}.Serialize(families);
  collector c;
  auto r = spoa::promtext::parse(text, c);
  ASSERT_TRUE(r.ok) << r.message << "\n" << text;
  auto expected = expected_rows(families);
  auto got = c.rows;
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), expected_samples) << text;
  ASSERT_EQ(got.size(), expected.size()) << text;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].name, expected[i].name);
    EXPECT_EQ(got[i].labels, expected[i].labels) << got[i].name;
    EXPECT_EQ(got[i].bound, expected[i].bound) << got[i].name;
    if (std::isnan(expected[i].value)) {
      EXPECT_TRUE(std::isnan(got[i].value)) << got[i].name;
    } else {
      EXPECT_EQ(got[i].value, expected[i].value) << got[i].name;
    }
    EXPECT_EQ(got[i].timestamp_ms, expected[i].timestamp_ms) << got[i].name;
  }
}

const std::map<std::string, std::string> awkward = {
    {"quote", "say \"hi\""},   {"backslash", "C:\\dir\\"},    {"newline", "two\nlines"},
    {"punct", "{a=\"b\",c}#"}, {"utf8", "é ü 日本 🙂"}, {"empty", ""},
    {"spaces", "  x\t y  "},
};

TEST(PromtextRoundTrip, RegistryWithAwkwardLabels) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& counters = prometheus::BuildCounter()
                       .Name("synapse_spoa_decisions_total")
                       // prometheus-cpp 1.0.1 writes HELP verbatim: a '\n' in it would break the
                       // body, so the agent's own HELP texts must stay on one line.
                       .Help("Routing \\ decisions by outcome")
                       .Register(*registry);
  counters.Add({{"outcome", "affine"}}).Increment(3);
  counters.Add({{"outcome", "spilled"}}).Increment(1e12 + 0.5);
  std::map<std::string, std::string> labels(awkward.begin(), awkward.end());
  counters.Add(labels).Increment(0.1 + 0.2);

  auto& gauges = prometheus::BuildGauge().Name("worker_load_ratio").Help("").Register(*registry);
  gauges.Add({{"worker", "room1"}}).Set(0.82);
  gauges.Add({{"worker", "room2"}}).Set(-1.5e-300);
  gauges.Add({{"worker", "room3"}}).Set(std::numeric_limits<double>::quiet_NaN());
  gauges.Add({{"worker", "room4"}}).Set(std::numeric_limits<double>::infinity());
  gauges.Add({{"worker", "room5"}}).Set(-std::numeric_limits<double>::infinity());
  gauges.Add({{"worker", "room6"}}).Set(1.72181000055e+09);

  auto& hist = prometheus::BuildHistogram()
                   .Name("decision_seconds")
                   .Help("Time to answer one NOTIFY")
                   .Register(*registry);
  auto& h = hist.Add({{"quote", "\"q\""}},
                     prometheus::Histogram::BucketBoundaries{25e-6, 50e-6, 1e-3, 5e-3});
  for (double v : {1e-6, 3e-5, 3e-5, 2e-3, 1.0})
    h.Observe(v);
  hist.Add({{"quote", "other"}}, prometheus::Histogram::BucketBoundaries{1, 2});  // empty

  auto& sum = prometheus::BuildSummary().Name("scrape_seconds").Help("s").Register(*registry);
  auto& s = sum.Add({{"worker", "a\\b"}},
                    prometheus::Summary::Quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}});
  for (int i = 1; i <= 100; ++i)
    s.Observe(i / 100.0);
  sum.Add({{"worker", "idle"}}, prometheus::Summary::Quantiles{{0.5, 0.05}});  // NaN quantile

  // 3 counters, 6 gauges, 2 histograms (4+1 and 2+1 buckets, + count + sum each),
  // 2 summaries (3 and 1 quantiles, + count + sum each).
  expect_round_trip(registry->Collect(), 3 + 6 + (5 + 2) + (3 + 2) + (3 + 2) + (1 + 2));
}

TEST(PromtextRoundTrip, HandBuiltFamiliesWithTimestamps) {
  std::vector<prometheus::MetricFamily> families(2);
  families[0].name = "process_cpu_seconds_total";
  families[0].type = prometheus::MetricType::Counter;
  families[0].metric.resize(1);
  families[0].metric[0].counter.value = 1843.27;
  families[0].metric[0].timestamp_ms = 1721810000550;
  families[1].name = "untyped_thing";
  families[1].type = prometheus::MetricType::Untyped;
  families[1].metric.resize(2);
  families[1].metric[0].untyped.value = 12345678901234567.0;
  families[1].metric[0].label = {{"a", "1"}, {"b", "\\\"\n"}};
  families[1].metric[1].untyped.value = 4.9e-324;  // smallest denormal
  families[1].metric[1].label = {{"a", "2"}};
  families[1].metric[1].timestamp_ms = -5;
  expect_round_trip(families, 3);
}

}  // namespace
