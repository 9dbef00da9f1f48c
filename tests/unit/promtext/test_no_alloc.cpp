// parse() must not allocate on a well-formed body: not per sample, not per label, not per body.
// Labels are views into the body held in a fixed array, and error text is built only on error.
// The project's counting operator new (tests/support/alloc_counter.cpp) is linked into this
// binary; each test builds its inputs first, then asserts an exact count across parse() alone.

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "promtext/parser.hpp"
#include "support/alloc_counter.hpp"

namespace {

using spoa::test::allocations;

std::string read_body(const std::string& name) {
  std::ifstream in(std::string(SPOA_REAL_BODIES) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Touches every decoded byte so nothing is optimised away; stores nothing, so allocates nothing.
class counting_sink final : public spoa::promtext::sink {
 public:
  explicit counting_sink(std::string_view only = {}) : only_(only) {}
  std::size_t samples = 0;
  std::size_t labels = 0;
  std::size_t bytes = 0;
  bool wants(std::string_view name) override { return only_.empty() || name == only_; }
  void on_sample(const spoa::promtext::sample& s) override {
    ++samples;
    bytes += s.family.size();
    for (const auto& l : s.labels) {
      ++labels;
      bytes += l.name.size() + l.value.size();
    }
  }

 private:
  std::string_view only_;
};

struct counted {
  std::uint64_t allocations = 0;
  std::size_t samples = 0;
  std::size_t labels = 0;
};

counted parse_counting(std::string_view body, std::string_view only = {}) {
  counting_sink sink(only);
  const std::uint64_t before = allocations();
  const spoa::promtext::parse_result r = spoa::promtext::parse(body, sink);
  const std::uint64_t after = allocations();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.samples, sink.samples);
  return {after - before, sink.samples, sink.labels};
}

// n series in each of a counter, a histogram and a summary family, every sample with long label
// names (past the small-string buffer), escaped values, quoted names, CRLF, timestamps and an
// OpenMetrics exemplar: each path of the label and value decoders, n times.
std::string synthetic(int n) {
  std::string b;
  b += "# HELP synthetic_requests_total Requests.\n# TYPE synthetic_requests_total counter\n";
  for (int i = 0; i < n; ++i) {
    b += "synthetic_requests_total{servlet_name_long=\"RoomSendEventRestServlet\",";
    b += "method_of_request=\"PUT\",escaped_value_label=\"a\\\"b\\\\c\\nd\",";
    b += "\"quoted.label.name\"=\"x\",series_index_label=\"" + std::to_string(i) + "\"} " +
         std::to_string(i) + ".5 1700000000000\r\n";
  }
  b += "# TYPE synthetic_duration_seconds histogram\n";
  for (int i = 0; i < n; ++i) {
    const std::string labels =
        "worker_instance_name=\"room1\",series_index_label=\"" + std::to_string(i) + "\"";
    const char* les[] = {"0.005", "0.5", "10.0", "+Inf"};
    int count = 0;
    for (const char* le : les) {
      count += 2;
      b += "synthetic_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
           std::to_string(count) + " # {trace_id=\"abc\"} 0.1\n";
    }
    b += "synthetic_duration_seconds_count{" + labels + "} " + std::to_string(count) + "\n";
    b += "synthetic_duration_seconds_sum{" + labels + "} 1.25e+01\n";
  }
  b += "# TYPE synthetic_latency summary\n";
  for (int i = 0; i < n; ++i) {
    const std::string labels = "series_index_label=\"" + std::to_string(i) + "\"";
    b += "synthetic_latency{" + labels + ",quantile=\"0.5\"} NaN\n";
    b += "synthetic_latency{" + labels + ",quantile=\"0.99\"} +Inf\n";
    b += "synthetic_latency_count{" + labels + "} 3\n";
    b += "synthetic_latency_sum{" + labels + "} -0.0\n";
  }
  b += "{\"synthetic.utf8.name\",\"another.quoted.label\"=\"v\"} 1\n# EOF\n";
  return b;
}

TEST(NoAllocation, TheCounterSeesAllocations) {
  const std::uint64_t before = allocations();
  auto* p = new std::string(100, 'x');  // the string object, then its 101-byte buffer
  delete p;
  EXPECT_EQ(allocations() - before, 2u);
}

TEST(NoAllocation, AnErrorAllocatesOnlyThenAndIsCounted) {
  // The counter is live across parse(): the error message is the one thing parse() builds.
  counting_sink sink;
  const std::uint64_t before = allocations();
  const auto r = spoa::promtext::parse("a{x=\"\\t\"} 1\n", sink);
  EXPECT_GE(allocations() - before, 1u);
  EXPECT_FALSE(r.ok);
}

TEST(NoAllocation, RealSynapseBodiesParseWithoutAllocating) {
  for (const char* name : {"main.txt", "room1.txt", "client_sync.txt",
                           "client_sync-during-longpoll.txt", "federation_sender.txt"}) {
    SCOPED_TRACE(name);
    const std::string body = read_body(name);
    ASSERT_FALSE(body.empty());
    const counted all = parse_counting(body);  // every line decoded
    EXPECT_EQ(all.allocations, 0u);
    EXPECT_GT(all.samples, 1000u);
    EXPECT_GT(all.labels, all.samples);
    // As load::extract asks: one family decoded, the rest skipped by name.
    const counted one = parse_counting(body, "python_gc_objects_collected_total");
    EXPECT_EQ(one.allocations, 0u);
    EXPECT_EQ(one.samples, 3u);  // generation="0", "1", "2"
    EXPECT_EQ(one.labels, 3u);
  }
}

TEST(NoAllocation, AllocationsDoNotGrowWithSamplesOrLabels) {
  const std::string n_body = synthetic(100);
  const std::string two_n_body = synthetic(200);
  const counted n = parse_counting(n_body);
  const counted two_n = parse_counting(two_n_body);
  // 1 counter + 6 histogram + 4 summary samples per series, and the quoted-name line.
  EXPECT_EQ(n.samples, 100u * 11 + 1);
  EXPECT_EQ(two_n.samples, 200u * 11 + 1);
  // Labels per series: counter 5; histogram 4 buckets * 3 + _count 2 + _sum 2; summary
  // 2 quantiles * 2 + _count 1 + _sum 1. Plus the quoted-name line's one.
  EXPECT_EQ(n.labels, 100u * 27 + 1);
  EXPECT_EQ(two_n.labels, 200u * 27 + 1);
  EXPECT_EQ(n.allocations, 0u);
  EXPECT_EQ(two_n.allocations, 0u);
}

}  // namespace
