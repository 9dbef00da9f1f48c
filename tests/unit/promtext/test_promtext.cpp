#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "promtext/parser.hpp"

namespace {

using spoa::promtext::parse;
using spoa::promtext::parse_result;

struct row {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
  bool has_timestamp = false;
  std::int64_t timestamp_ms = 0;
};

// Keeps everything (or only the names in `only`), and records every wants() question.
class collector : public spoa::promtext::sink {
 public:
  std::vector<std::string> only;
  std::vector<std::string> asked;
  std::vector<row> rows;

  bool wants(std::string_view name) override {
    asked.emplace_back(name);
    if (only.empty()) return true;
    for (const auto& o : only) {
      if (o == name) return true;
    }
    return false;
  }
  void on_sample(const spoa::promtext::sample& s) override {
    row r;
    r.name = std::string(s.family);
    for (const auto& l : s.labels) {
      r.labels[std::string(l.name)] = spoa::promtext::unescape_label_value(l.value);
    }
    r.value = s.value;
    r.has_timestamp = s.has_timestamp;
    r.timestamp_ms = s.timestamp_ms;
    rows.push_back(std::move(r));
  }
  const row* find(std::string_view name, const std::map<std::string, std::string>& labels = {}) {
    for (const auto& r : rows) {
      if (r.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = r.labels.find(k);
        if (it == r.labels.end() || it->second != v) match = false;
      }
      if (match) return &r;
    }
    return nullptr;
  }
};

std::string read_sample() {
  std::ifstream in(SPOA_PROMTEXT_SAMPLE, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

parse_result run(std::string_view body, collector& c, spoa::promtext::limits lim = {}) {
  return parse(body, c, lim);
}

std::string error_of(std::string_view body) {
  collector c;
  auto r = parse(body, c);
  EXPECT_FALSE(r.ok) << body;
  return r.message;
}

// --- the Synapse sample (reference §5) as a golden ---

TEST(PromtextGolden, SynapseRoomWorkerSample) {
  const std::string body = read_sample();
  ASSERT_FALSE(body.empty());
  collector c;
  auto r = run(body, c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.samples, 57u);
  EXPECT_EQ(c.rows.size(), 57u);

  auto value = [&](std::string_view name, const std::map<std::string, std::string>& l = {}) {
    const row* x = c.find(name, l);
    EXPECT_NE(x, nullptr) << name;
    return x ? x->value : std::numeric_limits<double>::quiet_NaN();
  };
  EXPECT_EQ(value("process_virtual_memory_bytes"), 1538985984.0);
  EXPECT_EQ(value("process_resident_memory_bytes"), 412246016.0);
  EXPECT_EQ(value("process_start_time_seconds"), 1.72181000055e+09);
  EXPECT_EQ(value("process_cpu_seconds_total"), 1843.27);
  EXPECT_EQ(value("process_open_fds"), 87.0);
  EXPECT_EQ(value("process_max_fds"), 1048576.0);
  EXPECT_EQ(value("process_cpu_user_seconds_total"), 1712.4);
  EXPECT_EQ(value("process_cpu_system_seconds_total"), 130.87);
  EXPECT_EQ(value("python_twisted_reactor_tick_time_bucket", {{"le", "0.001"}}), 402211.0);
  EXPECT_EQ(value("python_twisted_reactor_tick_time_bucket", {{"le", "+Inf"}}), 596133.0);
  EXPECT_EQ(value("python_twisted_reactor_tick_time_count"), 596133.0);
  EXPECT_EQ(value("python_twisted_reactor_tick_time_sum"), 1488.52);
  EXPECT_EQ(value("python_twisted_reactor_last_seen"), 0.0031);
  EXPECT_EQ(value("synapse_http_server_requests_received_total",
                  {{"servlet", "FederationStateIdsServlet"}}),
            1431.0);
  EXPECT_EQ(value("synapse_http_server_responses_total", {{"code", "403"}}), 38.0);
  EXPECT_EQ(value("synapse_http_server_response_time_seconds_bucket",
                  {{"le", "0.075"}, {"servlet", "RoomSendEventRestServlet"}, {"tag", ""}}),
            5177.0);
  EXPECT_EQ(value("synapse_http_server_response_time_seconds_sum"), 712.66);
  EXPECT_EQ(value("synapse_http_server_in_flight_requests_count",
                  {{"method", "GET"}, {"servlet", "RoomMessageListRestServlet"}}),
            4.0);
  EXPECT_EQ(value("synapse_http_server_in_flight_requests_count",
                  {{"method", "PUT"}, {"servlet", "RoomSendEventRestServlet"}}),
            1.0);
  EXPECT_EQ(value("synapse_background_process_in_flight_count", {{"name", "fetch_events"}}), 1.0);
  EXPECT_EQ(value("synapse_storage_schedule_time_count"), 984310.0);
  EXPECT_EQ(value("synapse_storage_schedule_time_sum"), 310.2);
  EXPECT_EQ(value("synapse_threadpool_working_threads", {{"name", "database-master"}}), 3.0);
  EXPECT_EQ(value("synapse_util_caches_cache_hits", {{"name", "*getEvent*"}}), 5551201.0);

  const row* in_flight = c.find("synapse_http_server_in_flight_requests_count");
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->labels.size(), 3u);
  EXPECT_EQ(in_flight->labels.at("server_name"), "example.org");
  for (const auto& x : c.rows)
    EXPECT_FALSE(x.has_timestamp);
}

TEST(PromtextGolden, WantsIsAskedOncePerNameRunAndFiltersLines) {
  const std::string body = read_sample();
  collector c;
  c.only = {"process_cpu_seconds_total", "synapse_http_server_in_flight_requests_count"};
  auto r = run(body, c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.samples, 3u);
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.rows[0].name, "process_cpu_seconds_total");
  // One question per run of equal names: 13 tick buckets collapse into one question, and so on.
  std::size_t bucket_questions = 0;
  for (const auto& a : c.asked)
    bucket_questions += a == "python_twisted_reactor_tick_time_bucket";
  EXPECT_EQ(bucket_questions, 1u);
  EXPECT_EQ(c.asked.size(), 24u);
}

TEST(PromtextGolden, EveryPrefixParsesOrFailsCleanly) {
  // Truncated bodies (a cut connection) must never crash, and fail with a located message.
  const std::string body = read_sample();
  struct null_sink : spoa::promtext::sink {
    bool wants(std::string_view) override { return true; }
    void on_sample(const spoa::promtext::sample&) override {}
  } c;
  for (std::size_t i = 0; i <= body.size(); ++i) {
    auto r = parse(std::string_view(body).substr(0, i), c);
    if (i == 0 || body[i - 1] == '\n') {
      // A cut at a line end is valid unless it cuts a histogram before its +Inf bucket.
      EXPECT_TRUE(r.ok || r.message.find("without a le=\"+Inf\" bucket") != std::string::npos)
          << i << ": " << r.message;
    }
    if (!r.ok) {
      EXPECT_GT(r.line, 0u);
      EXPECT_EQ(r.message.rfind("line " + std::to_string(r.line) + ": ", 0), 0u);
    }
  }
}

// --- §6 rules ---

TEST(PromtextRules, EmptyBodyAndEmptyLines) {
  collector c;
  EXPECT_TRUE(run("", c).ok);
  EXPECT_TRUE(run("\n\n  \n\t\n", c).ok);
  EXPECT_TRUE(run("a 1\n\n\nb 2\n", c).ok);
  EXPECT_EQ(c.rows.size(), 2u);
}

TEST(PromtextRules, LastLineWithoutNewlineIsAccepted) {
  collector c;
  auto r = run("a 1\nb 2", c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[1].value, 2.0);
}

TEST(PromtextRules, CrlfLineEndsAreTolerated) {
  collector c;
  auto r = run("# HELP a doc\r\n# TYPE a gauge\r\na{x=\"y\"} 1.5\r\nb 2\r\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].value, 1.5);
  EXPECT_EQ(c.rows[1].value, 2.0);
  // A '\r' anywhere else is not a line end.
  EXPECT_EQ(error_of("a 1\rb 2\n"), "line 1: invalid value \"1?b\" for \"a\"");
}

TEST(PromtextRules, BlanksAndTabsSeparateTokens) {
  collector c;
  auto r = run(" \t a \t{ x = \"1\" ,\ty=\"2\" , }\t 3.5 \t 1000 \t\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0].name, "a");
  EXPECT_EQ(c.rows[0].labels.at("x"), "1");
  EXPECT_EQ(c.rows[0].labels.at("y"), "2");
  EXPECT_EQ(c.rows[0].value, 3.5);
  EXPECT_TRUE(c.rows[0].has_timestamp);
  EXPECT_EQ(c.rows[0].timestamp_ms, 1000);
}

TEST(PromtextRules, CommentsAreIgnored) {
  collector c;
  auto r = run("# just a comment\n#HELP not metadata\n#\n# HELPER x\na 1\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c.rows.size(), 1u);
}

TEST(PromtextRules, HelpMayBeEmptyAndTypeIsOptional) {
  collector c;
  auto r = run("# HELP a \n# TYPE a counter\na 1\n# HELP b\nb 2\nc 3\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c.rows.size(), 3u);
}

TEST(PromtextRules, EveryTypeIsAccepted) {
  for (const char* t : {"counter", "gauge", "histogram", "summary", "untyped", "unknown",
                        "gaugehistogram", "info", "stateset"}) {
    collector c;
    std::string body = std::string("# TYPE x ") + t + "\n";
    EXPECT_TRUE(run(body, c).ok) << t;
  }
  EXPECT_EQ(error_of("# TYPE x gauges\n"),
            "line 1: unknown metric type \"gauges\" (expected counter, gauge, histogram, summary "
            "or untyped)");
  EXPECT_EQ(error_of("# TYPE x\n"), "line 1: expected a type after \"# TYPE x\"");
  EXPECT_EQ(error_of("# TYPE\n"), "line 1: expected a metric name after \"# TYPE\"");
  EXPECT_EQ(error_of("# TYPE x gauge extra\n"), "line 1: unexpected text after \"# TYPE x gauge\"");
  EXPECT_EQ(error_of("# HELP 1x doc\n"), "line 1: invalid metric name \"1x\" after \"# HELP\"");
}

TEST(PromtextRules, AtMostOneHelpAndTypePerFamilyAndTypeBeforeSamples) {
  EXPECT_EQ(error_of("# TYPE a gauge\n# TYPE a gauge\na 1\n"),
            "line 2: second TYPE line for \"a\"");
  EXPECT_EQ(error_of("# HELP a x\n# TYPE a gauge\n# HELP a y\na 1\n"),
            "line 3: second HELP line for \"a\"");
  EXPECT_EQ(error_of("a 1\n# TYPE a gauge\n"), "line 2: TYPE line for \"a\" after its samples");
  EXPECT_EQ(error_of("# HELP a_total x\na_total 1\n# TYPE a_total counter\n"),
            "line 3: TYPE line for \"a_total\" after its samples");
  // A different family in between starts afresh (contiguity is not tracked).
  collector c;
  EXPECT_TRUE(run("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n", c).ok);
}

TEST(PromtextRules, LabelsAnyOrderTrailingCommaAndEmptySet) {
  collector c;
  auto r = run("a{b=\"1\",a=\"2\",} 1\nb{} 2\nc{ } 3\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.rows[0].labels.size(), 2u);
  EXPECT_TRUE(c.rows[1].labels.empty());
  EXPECT_TRUE(c.rows[2].labels.empty());
}

TEST(PromtextRules, LabelEscapes) {
  struct raw_sink : spoa::promtext::sink {
    std::string raw;
    bool wants(std::string_view) override { return true; }
    void on_sample(const spoa::promtext::sample& s) override {
      raw = std::string(s.labels[0].value);
    }
  } k;
  auto r = parse(R"(a{x="q\"b\\s\nn{}=,é"} 1)", k);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(k.raw, R"(q\"b\\s\nn{}=,é)");
  EXPECT_EQ(spoa::promtext::unescape_label_value(k.raw), "q\"b\\s\nn{}=,é");
  EXPECT_EQ(spoa::promtext::unescape_label_value(R"(\\n)"), "\\n");
  EXPECT_EQ(error_of(R"(a{x="\t"} 1)"), "line 1: invalid escape \"\\t\" in value of label \"x\"");
  EXPECT_EQ(error_of("a{x=\"abc} 1\n"),
            "line 1: unterminated value of label \"x\" (expected a closing '\"')");
  EXPECT_EQ(error_of("a{x=\"abc\\\"} 1\n"),
            "line 1: unterminated value of label \"x\" (expected a closing '\"')");
}

TEST(PromtextRules, MalformedLabelSets) {
  EXPECT_EQ(error_of("a{x} 1\n"), "line 1: expected '=' after label name \"x\"");
  EXPECT_EQ(error_of("a{x=1} 1\n"), "line 1: expected '\"' to open the value of label \"x\"");
  EXPECT_EQ(error_of("a{x=\"1\" y=\"2\"} 1\n"),
            "line 1: expected ',' or '}' after the value of label \"x\"");
  EXPECT_EQ(error_of("a{x=\"1\",x=\"2\"} 1\n"), "line 1: duplicate label \"x\"");
  EXPECT_EQ(error_of("a{1x=\"1\"} 1\n"), "line 1: expected a label name or '}', found '1'");
  EXPECT_EQ(error_of("a{x=\"1\","), "line 1: unterminated label set (expected '}')");
  EXPECT_EQ(error_of("a{x=\"1\"}\n"), "line 1: expected a value after \"a\"");
}

TEST(PromtextRules, MalformedNamesAndLines) {
  EXPECT_EQ(error_of("<html>\n"),
            "line 1: expected a metric name, '#' or '{' at the start of the line, found '<'");
  EXPECT_EQ(error_of("a 1\nfoo-bar 1\n"), "line 2: invalid character '-' in metric name \"foo\"");
  EXPECT_EQ(error_of("a\n"), "line 1: expected a value after \"a\"");
  EXPECT_EQ(error_of("a 1 2 3\n"), "line 1: unexpected text \"3\" after the sample");
}

TEST(PromtextRules, QuotedUtf8NamesAreTolerated) {
  collector c;
  auto r =
      run("{\"my.dotted.metric\", \"error.message\"=\"Not Found\"} 3\n"
          "{\"only.name\"} 4\n"
          "plain{\"a.b\"=\"c\"} 5\n",
          c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.rows[0].name, "my.dotted.metric");
  EXPECT_EQ(c.rows[0].labels.at("error.message"), "Not Found");
  EXPECT_EQ(c.rows[0].value, 3.0);
  EXPECT_EQ(c.rows[1].name, "only.name");
  EXPECT_EQ(c.rows[2].labels.at("a.b"), "c");
  EXPECT_EQ(error_of("{x=\"1\"} 1\n"), "line 1: expected a metric name or a quoted name after '{'");
}

TEST(PromtextRules, Values) {
  auto v = [](std::string_view t) {
    double d = -12345;
    EXPECT_TRUE(spoa::promtext::parse_value(t, d)) << t;
    return d;
  };
  EXPECT_TRUE(std::isnan(v("NaN")));
  EXPECT_TRUE(std::isnan(v("Nan")));  // prometheus-cpp
  EXPECT_TRUE(std::isnan(v("nan")));
  EXPECT_EQ(v("+Inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(v("-Inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(v("Inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(v("+infinity"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(v("1.2e+010"), 1.2e10);
  EXPECT_EQ(v("4.12246016e+08"), 412246016.0);
  EXPECT_EQ(v("37.0"), 37.0);
  EXPECT_EQ(v("-0.5"), -0.5);
  EXPECT_EQ(v("+7"), 7.0);
  EXPECT_EQ(v(".5"), 0.5);
  EXPECT_EQ(v("1E3"), 1000.0);
  EXPECT_TRUE(std::signbit(v("-0")));
  double d = 0;
  for (std::string_view bad : {"", "abc", "1e999", "+-1", "--1", "0x10", "nan(1)", "+NaN", "1e",
                               "1.2.3", "1,5", " 1", "infx", "∞"}) {
    EXPECT_FALSE(spoa::promtext::parse_value(bad, d)) << bad;
  }
  EXPECT_EQ(error_of("a 1e999\n"), "line 1: invalid value \"1e999\" for \"a\"");
  EXPECT_EQ(error_of("a{x=\"1\"} one\n"), "line 1: invalid value \"one\" for \"a\"");
}

TEST(PromtextRules, Timestamps) {
  collector c;
  auto r = run("a 1 1721810000550\nb 2 -42\nc 3 +5\nd 4 1721810000.55\ne 5\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(c.rows.size(), 5u);
  EXPECT_EQ(c.rows[0].timestamp_ms, 1721810000550);
  EXPECT_EQ(c.rows[1].timestamp_ms, -42);
  EXPECT_EQ(c.rows[2].timestamp_ms, 5);
  EXPECT_EQ(c.rows[3].timestamp_ms, 1721810000550);  // OpenMetrics seconds
  EXPECT_FALSE(c.rows[4].has_timestamp);
  EXPECT_EQ(error_of("a 1 12a\n"),
            "line 1: invalid timestamp \"12a\" (expected integer milliseconds)");
  EXPECT_EQ(error_of("a 1 NaN\n"),
            "line 1: invalid timestamp \"NaN\" (expected integer milliseconds)");
  EXPECT_EQ(error_of("a 1 99999999999999999999\n"),
            "line 1: invalid timestamp \"99999999999999999999\" (expected integer milliseconds)");
}

TEST(PromtextRules, HistogramRules) {
  const std::string ok =
      "# TYPE h histogram\n"
      "h_bucket{le=\"0.1\"} 1\n"
      "h_bucket{le=\"1\"} 3\n"
      "h_bucket{le=\"+Inf\"} 4\n"
      "h_count 4\n"
      "h_sum 2.5\n";
  collector c;
  auto r = run(ok, c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c.rows.size(), 5u);

  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_count 3\nh_sum 1\n"),
            "line 4: histogram \"h\" series ended without a le=\"+Inf\" bucket");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"1\"} 3\n"),
            "line 2: histogram \"h\" series ended without a le=\"+Inf\" bucket");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_count 4\nh_sum 1\n"),
            "line 4: histogram \"h\": le=\"+Inf\" bucket (3) differs from its _count (4)");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\n"),
            "line 3: le=\"0.5\" is not above the previous bucket's le=\"1\"");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\n"),
            "line 3: bucket count 4 is below the previous bucket's 5 (buckets are cumulative)");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket 5\n"),
            "line 2: histogram bucket \"h_bucket\" has no le label");
  EXPECT_EQ(error_of("# TYPE h histogram\nh_bucket{le=\"x\"} 5\n"),
            "line 2: invalid le \"x\" on \"h_bucket\"");
  EXPECT_EQ(error_of("# TYPE h histogram\nh 5\n"),
            "line 2: sample \"h\" of family \"h\" needs its type's suffix (_bucket, _count, _sum, "
            "_info, ...)");
  // Series are told apart by their labels other than le; each is checked on its own.
  collector c2;
  auto r2 =
      run("# TYPE h histogram\n"
          "h_count{a=\"x\"} 2\nh_sum{a=\"x\"} 1\nh_bucket{a=\"x\",le=\"1\"} 1\n"
          "h_bucket{le=\"+Inf\",a=\"x\"} 2\n"
          "h_bucket{a=\"y\",le=\"0.5\"} 0\nh_bucket{a=\"y\",le=\"+Inf\"} 0\nh_count{a=\"y\"} 0\n",
          c2);
  EXPECT_TRUE(r2.ok) << r2.message;
  // Skipped (unwanted) buckets are not checked: only decoded lines are.
  collector c3;
  c3.only = {"h_count"};
  EXPECT_TRUE(run("# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_count 3\n", c3).ok);
}

TEST(PromtextRules, SummaryRules) {
  collector c;
  auto r = run(
      "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.99\"} Nan\ns_sum 3\ns_count 2\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c.rows.size(), 4u);
  EXPECT_EQ(error_of("# TYPE s summary\ns 1\n"),
            "line 2: summary sample \"s\" has no quantile label");
  EXPECT_EQ(error_of("# TYPE s summary\ns{quantile=\"hi\"} 1\n"),
            "line 2: invalid quantile \"hi\" on \"s\"");
}

TEST(PromtextRules, Limits) {
  spoa::promtext::limits lim;
  lim.max_labels = 2;
  lim.max_line = 16;
  collector c;
  EXPECT_TRUE(run("a{x=\"1\",y=\"2\"} 1", c, lim).ok);  // exactly 16 bytes, 2 labels
  auto r = run("a{x=\"1\",y=\"2\"} 12\n", c, lim);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "line 1: line is 17 bytes, over the limit of 16");
  lim.max_line = 1000;
  r = run("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", c, lim);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "line 1: more than 2 labels");
  // max_labels is clamped to the fixed buffer.
  lim.max_labels = 1000;
  std::string many = "a{";
  for (std::size_t i = 0; i <= spoa::promtext::max_labels_capacity; ++i) {
    many += "l" + std::to_string(i) + "=\"v\",";
  }
  many += "} 1\n";
  r = run(many, c, lim);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "line 1: more than 64 labels");
}

TEST(PromtextRules, ScrapeIsAllOrNothingAndReportsTheLine) {
  collector c;
  auto r = run("a 1\nb 2\nc x\nd 4\n", c);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 3u);
  EXPECT_EQ(r.message, "line 3: invalid value \"x\" for \"c\"");
  EXPECT_EQ(r.samples, 2u);  // delivered before the error; the caller discards them
  EXPECT_EQ(c.rows.size(), 2u);
}

TEST(PromtextRules, UnwantedLinesAreOnlyCheckedForTheirName) {
  collector c;
  c.only = {"a"};
  auto r = run("a 1\nb{{{ garbage\nb also garbage\na 2\n", c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.samples, 2u);
  EXPECT_EQ(c.asked, (std::vector<std::string>{"a", "b", "a"}));
}

TEST(PromtextOpenMetrics, BodyIsTolerated) {
  collector c;
  auto r =
      run("# TYPE process_cpu_seconds counter\n"
          "# UNIT process_cpu_seconds seconds\n"
          "# HELP process_cpu_seconds CPU.\n"
          "process_cpu_seconds_total 12.5\n"
          "process_cpu_seconds_created 1.7e9\n"
          "# TYPE things unknown\n"
          "things 1\n"
          "# TYPE build info\n"
          "build_info{version=\"1\"} 1\n"
          "# TYPE rpc histogram\n"
          "rpc_bucket{le=\"+INF\"} 2 # {trace_id=\"abc\"} 0.5 1.5\n"
          "rpc_count 2\nrpc_sum 1\nrpc_created 1.7e9\n"
          "# EOF\n",
          c);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.samples, 8u);
  EXPECT_EQ(c.find("process_cpu_seconds_total")->value, 12.5);
  EXPECT_NE(c.find("process_cpu_seconds_created"), nullptr);
  EXPECT_EQ(c.find("rpc_bucket")->value, 2.0);
  EXPECT_EQ(error_of("a 1\n# EOF\nb 2\n"), "line 3: text after \"# EOF\"");
  EXPECT_EQ(error_of("# EOF now\n"), "line 1: unexpected text after \"# EOF\"");
  collector c2;
  EXPECT_TRUE(run("a 1\n# EOF\n\n", c2).ok);
}

}  // namespace
