// The parser against real Synapse 1.160 /metrics bodies (tests/unit/load/real/, see its README):
// every body parses, every sample line reaches the sink with its labels, and a few values of each
// are checked exactly as written in the file.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "promtext/parser.hpp"

namespace {

std::string read_body(const std::string& name) {
  std::ifstream in(std::string(SPOA_REAL_BODIES) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sample lines counted without the parser: non-empty lines that do not start with '#'.
std::size_t sample_lines(const std::string& body) {
  std::size_t n = 0;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    n += !line.empty() && line[0] != '#';
  return n;
}

struct row {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

class collector : public spoa::promtext::sink {
 public:
  std::vector<row> rows;
  bool wants(std::string_view) override { return true; }
  void on_sample(const spoa::promtext::sample& s) override {
    row r;
    r.name = std::string(s.family);
    for (const auto& l : s.labels)
      r.labels[std::string(l.name)] = spoa::promtext::unescape_label_value(l.value);
    r.value = s.value;
    EXPECT_FALSE(s.has_timestamp) << r.name;  // prometheus_client writes none
    rows.push_back(std::move(r));
  }
  std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& r : rows)
      n += r.name == name;
    return n;
  }
  // Rows with this exact name and exactly these labels.
  std::vector<const row*> find(std::string_view name,
                               const std::map<std::string, std::string>& labels = {}) const {
    std::vector<const row*> out;
    for (const auto& r : rows) {
      if (r.name == name && r.labels == labels) out.push_back(&r);
    }
    return out;
  }
};

struct golden {
  const char* file;
  std::size_t samples;
  double cpu;                 // process_cpu_seconds_total
  double resident;            // process_resident_memory_bytes
  double tick_le_1ms;         // python_twisted_reactor_tick_time_bucket{le="0.001"}
  double tick_inf;            // python_twisted_reactor_tick_time_bucket{le="+Inf"}
  double sched_le_5ms;        // synapse_storage_schedule_time_bucket{le="0.005",server_name}
  double notifier_listeners;  // synapse_notifier_listeners{server_name}
  std::size_t in_flight_series;
};

class RealBody : public ::testing::TestWithParam<golden> {};

TEST_P(RealBody, ParsesFullyWithEverySampleAndExactValues) {
  const golden& g = GetParam();
  const std::string body = read_body(g.file);
  ASSERT_FALSE(body.empty()) << g.file;
  collector c;
  const auto r = spoa::promtext::parse(body, c);
  ASSERT_TRUE(r.ok) << g.file << ": " << r.message;
  EXPECT_EQ(r.samples, g.samples);
  EXPECT_EQ(sample_lines(body), g.samples);
  ASSERT_EQ(c.rows.size(), g.samples);

  auto one = [&](std::string_view name, const std::map<std::string, std::string>& labels = {}) {
    auto found = c.find(name, labels);
    EXPECT_EQ(found.size(), 1u) << name;
    return found.empty() ? -1.0 : found[0]->value;
  };
  const std::map<std::string, std::string> server{{"server_name", "localhost"}};
  EXPECT_EQ(one("process_cpu_seconds_total"), g.cpu);
  EXPECT_EQ(one("process_resident_memory_bytes"), g.resident);
  EXPECT_EQ(one("python_twisted_reactor_tick_time_bucket", {{"le", "0.001"}}), g.tick_le_1ms);
  EXPECT_EQ(one("python_twisted_reactor_tick_time_bucket", {{"le", "+Inf"}}), g.tick_inf);
  EXPECT_EQ(
      one("synapse_storage_schedule_time_bucket", {{"le", "0.005"}, {"server_name", "localhost"}}),
      g.sched_le_5ms);
  EXPECT_EQ(one("synapse_notifier_listeners", server), g.notifier_listeners);
  // Idle: HELP/TYPE only. The long-poll body has its one series, labelled as Synapse labels it.
  EXPECT_EQ(c.count("synapse_http_server_in_flight_requests_count"), g.in_flight_series);
  if (g.in_flight_series == 1) {
    EXPECT_EQ(
        one("synapse_http_server_in_flight_requests_count",
            {{"method", "GET"}, {"server_name", "localhost"}, {"servlet", "SyncRestServlet"}}),
        1.0);
  }
  // The same in every process: label values with blanks and parentheses, and no labels at all
  // on python_* (only python_info and the gc families carry some).
  EXPECT_EQ(
      one("synapse_build_info",
          {{"osversion", "Linux 6.18.44-fc-v669"},
           {"pythonversion", "CPython 3.14.10"},
           {"rustcversion", "rustc 1.95.0 (59807616e 2026-04-14) (built from a source tarball)"},
           {"version", "1.160.0"}}),
      1.0);
  EXPECT_EQ(one("python_info", {{"implementation", "CPython"},
                                {"major", "3"},
                                {"minor", "14"},
                                {"patchlevel", "10"},
                                {"version", "3.14.10"}}),
            1.0);
  EXPECT_EQ(one("synapse_threadpool_max_threads",
                {{"name", "database-master"}, {"server_name", "localhost"}}),
            5.0);
  for (const auto& x : c.rows) {
    if (x.name.starts_with("synapse_") && x.name != "synapse_build_info") {
      EXPECT_EQ(x.labels.count("server_name"), 1u) << x.name;
    }
    if (x.name.starts_with("process_") || x.name.starts_with("python_twisted_")) {
      const std::size_t allowed = x.name.ends_with("_bucket") ? 1 : 0;  // le only
      EXPECT_EQ(x.labels.size(), allowed) << x.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Synapse1160, RealBody,
    ::testing::Values(
        golden{"main.txt", 1942, 3.18, 1.50786048e+08, 474.0, 591.0, 410.0, 0.0, 0},
        golden{"room1.txt", 1974, 2.0300000000000002, 1.52481792e+08, 348.0, 426.0, 151.0, 0.0, 0},
        golden{"client_sync.txt", 1614, 1.66, 1.50249472e+08, 207.0, 259.0, 93.0, 0.0, 0},
        golden{"client_sync-during-longpoll.txt", 1680, 2.2, 1.51986176e+08, 1633.0, 1702.0, 157.0,
               1.0, 1},
        golden{"federation_sender.txt", 1198, 1.94, 1.49413888e+08, 199.0, 239.0, 84.0, 0.0, 0}),
    [](const ::testing::TestParamInfo<golden>& p) {
      std::string n = p.param.file;
      n = n.substr(0, n.find('.'));
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

TEST(RealBodyPrefixes, EveryCutAtALineEndParsesOrFailsAtAnOpenHistogram) {
  // A connection cut between two lines: the body up to there is valid text, except when the cut
  // falls inside a histogram series before its le="+Inf" bucket.
  const std::string body = read_body("federation_sender.txt");
  ASSERT_FALSE(body.empty());
  struct null_sink : spoa::promtext::sink {
    bool wants(std::string_view) override { return true; }
    void on_sample(const spoa::promtext::sample&) override {}
  } sink;
  std::size_t cuts = 0;
  std::size_t inside_histogram = 0;
  for (std::size_t i = 0; i <= body.size(); ++i) {
    if (i != 0 && body[i - 1] != '\n') continue;
    ++cuts;
    const auto r = spoa::promtext::parse(std::string_view(body).substr(0, i), sink);
    if (!r.ok) {
      ++inside_histogram;
      EXPECT_NE(r.message.find("without a le=\"+Inf\" bucket"), std::string::npos)
          << i << ": " << r.message;
    }
  }
  EXPECT_EQ(cuts, 1607u);             // 1606 lines, plus the empty prefix
  EXPECT_EQ(inside_histogram, 202u);  // the _bucket lines other than le="+Inf"
}

}  // namespace
