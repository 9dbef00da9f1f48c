// The simulator's exposition against real Synapse 1.160's (tests/unit/load/real/): every family
// the simulator writes is one real Synapse writes, with the same type, HELP text, label names,
// histogram buckets and relative order; the families the agent reads and the dashboard queries
// are all there; and the agent's extractor sees the same thing in a simulated and a real body of
// the same state (idle, /sync long-poll open).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "load/extract.hpp"
#include "promtext/parser.hpp"
#include "support/worker_model.hpp"

namespace spoa::sim {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string read_real(const std::string& name) {
  return read_file(std::string(SPOA_REAL_BODIES) + "/" + name);
}

const std::vector<std::string>& real_files() {
  static const std::vector<std::string> files{"main.txt", "room1.txt", "client_sync.txt",
                                              "client_sync-during-longpoll.txt",
                                              "federation_sender.txt"};
  return files;
}

struct family_shape {
  std::string type;
  std::string help;              // as written, unescaped
  std::set<std::string> labels;  // label names of the samples, le excepted
  std::vector<std::string> le;   // le values of the first histogram series, as written
  std::size_t samples = 0;
  bool first_series_done = false;
};

struct exposition_shape {
  std::vector<std::string> order;  // families, in the order of their TYPE lines
  std::map<std::string, family_shape> families;
  std::vector<std::string> errors;
};

bool belongs_to(std::string_view sample, std::string_view family, std::string_view type) {
  if (sample == family) return type != "histogram";
  if (!sample.starts_with(family)) return false;
  std::string_view suffix = sample.substr(family.size());
  return type == "histogram" && (suffix == "_bucket" || suffix == "_count" || suffix == "_sum");
}

// Families from the HELP/TYPE lines (prometheus_client writes both before any sample), samples
// from promtext::parse, matched in body order: the i-th sample line is the i-th sample.
exposition_shape shape_of(const std::string& body) {
  exposition_shape out;
  std::vector<std::string> family_of_sample;
  std::string current;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# HELP ")) {
      const std::string rest = line.substr(7);
      const auto sp = rest.find(' ');
      if (sp == std::string::npos) {
        out.errors.push_back("HELP without a text: " + line);
        continue;
      }
      out.families[rest.substr(0, sp)].help = rest.substr(sp + 1);
    } else if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      current = name;
      out.order.push_back(name);
      out.families[name].type = type;
    } else if (!line.empty() && line[0] != '#') {
      family_of_sample.push_back(current);
    }
  }

  struct sink_t : promtext::sink {
    exposition_shape* out = nullptr;
    const std::vector<std::string>* family_of_sample = nullptr;
    std::size_t index = 0;
    bool wants(std::string_view) override { return true; }
    void on_sample(const promtext::sample& s) override {
      if (index >= family_of_sample->size()) return;
      const std::string& name = (*family_of_sample)[index++];
      family_shape& f = out->families[name];
      if (!belongs_to(s.family, name, f.type)) {
        out->errors.push_back(std::string(s.family) + " outside its family " + name);
      }
      ++f.samples;
      std::set<std::string> names;
      for (const auto& l : s.labels) {
        if (l.name == "le") {
          if (!f.first_series_done) {
            f.le.emplace_back(l.value);
            f.first_series_done = l.value == "+Inf";
          }
        } else {
          names.emplace(l.name);
        }
      }
      if (f.samples == 1) {
        f.labels = names;
      } else if (names != f.labels) {
        out->errors.push_back(name + ": samples with different label names");
      }
    }
  } sink;
  sink.out = &out;
  sink.family_of_sample = &family_of_sample;
  const auto r = promtext::parse(body, sink);
  if (!r.ok) out.errors.push_back(r.message);
  if (sink.index != family_of_sample.size()) out.errors.push_back("sample count mismatch");
  return out;
}

// The five real bodies merged: one shape per family, label names from whichever body has samples.
struct real_shape {
  exposition_shape merged;
  std::vector<std::string> disagreements;
};

const real_shape& real() {
  static const real_shape r = [] {
    real_shape out;
    for (const auto& file : real_files()) {
      exposition_shape s = shape_of(read_real(file));
      for (const auto& e : s.errors)
        out.disagreements.push_back(file + ": " + e);
      if (out.merged.order.empty()) out.merged.order = s.order;
      for (auto& [name, f] : s.families) {
        auto [it, fresh] = out.merged.families.emplace(name, f);
        if (fresh) continue;
        family_shape& m = it->second;
        if (m.type != f.type || m.help != f.help) {
          out.disagreements.push_back(file + ": " + name + " type or HELP differs");
        }
        if (f.samples == 0) continue;
        if (m.samples != 0 && (m.labels != f.labels || m.le != f.le)) {
          out.disagreements.push_back(file + ": " + name + " labels or buckets differ");
        }
        if (m.samples == 0) {
          m.labels = f.labels;
          m.le = f.le;
        }
        m.samples += f.samples;
      }
    }
    return out;
  }();
  return r;
}

model_params params() {
  model_params p;
  p.name = "room1";
  p.server_name = "localhost";
  p.cpu_per_request = 0.002;
  p.cores = 1;
  p.idle_cpu_rate = 0.01;
  return p;
}

// A worker with every kind of series the simulator writes: completed requests (200 and 404),
// requests in flight, a /sync long-poll in flight.
std::string busy_body() {
  worker_model m(params(), 0.0, 1796156360.02);
  auto done = m.admit("GET", "/_matrix/client/v3/rooms/!r:x/messages", 0.0);
  auto missing = m.admit("GET", "/_matrix/client/v3/nonexistent", 0.0);
  m.complete(done, 200, 0.01);
  m.complete(missing, 404, 0.01);
  m.admit("PUT", "/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1", 0.5);
  m.admit("GET", "/_matrix/client/v3/sync?since=s1&timeout=30000", 0.5);
  return m.scrape(1.0, 26);
}

std::string idle_body() {
  worker_model m(params(), 0.0, 1796156360.02);
  return m.scrape(1.0, 26);
}

std::string longpoll_body() {
  worker_model m(params(), 0.0, 1796154206.53);
  m.admit("GET", "/_matrix/client/v3/sync?since=s1&timeout=30000", 0.5);
  return m.scrape(1.0, 26);
}

TEST(RealShape, TheFiveRealBodiesAgree) {
  const real_shape& r = real();
  EXPECT_TRUE(r.disagreements.empty()) << r.disagreements.front();
  EXPECT_EQ(r.merged.families.size(), 204u);
  EXPECT_EQ(r.merged.order.size(), 204u);
}

void expect_real_shape(const std::string& body, const char* what) {
  const real_shape& r = real();
  const exposition_shape sim = shape_of(body);
  EXPECT_TRUE(sim.errors.empty()) << what << ": " << sim.errors.front();
  ASSERT_FALSE(sim.order.empty());
  for (const auto& name : sim.order) {
    SCOPED_TRACE(std::string(what) + ": " + name);
    auto it = r.merged.families.find(name);
    ASSERT_NE(it, r.merged.families.end()) << "real Synapse 1.160 has no family " << name;
    const family_shape& real_f = it->second;
    const family_shape& sim_f = sim.families.at(name);
    EXPECT_EQ(sim_f.type, real_f.type);
    EXPECT_EQ(sim_f.help, real_f.help);
    if (sim_f.samples == 0) continue;
    ASSERT_GT(real_f.samples, 0u) << "no real body has a sample to compare with";
    EXPECT_EQ(sim_f.labels, real_f.labels);
    EXPECT_EQ(sim_f.le, real_f.le);
  }
  // Same relative order: the simulator's families are a subsequence of the real ones.
  std::size_t at = 0;
  for (const auto& name : sim.order) {
    auto found = std::find(r.merged.order.begin() + static_cast<std::ptrdiff_t>(at),
                           r.merged.order.end(), name);
    EXPECT_NE(found, r.merged.order.end()) << what << ": " << name << " out of real order";
    if (found == r.merged.order.end()) break;
    at = static_cast<std::size_t>(found - r.merged.order.begin()) + 1;
  }
}

TEST(RealShape, SimulatorFamiliesAreRealSynapsesWhenBusy) {
  expect_real_shape(busy_body(), "busy");
}

TEST(RealShape, SimulatorFamiliesAreRealSynapsesWhenIdle) {
  expect_real_shape(idle_body(), "idle");
}

TEST(RealShape, InFlightHasNoSampleWhenIdleAndMethodServletWhenBusy) {
  const exposition_shape real_idle = shape_of(read_real("client_sync.txt"));
  const exposition_shape sim_idle = shape_of(idle_body());
  const std::string in_flight = "synapse_http_server_in_flight_requests_count";
  ASSERT_EQ(real_idle.families.count(in_flight), 1u);
  ASSERT_EQ(sim_idle.families.count(in_flight), 1u);
  EXPECT_EQ(real_idle.families.at(in_flight).samples, 0u);
  EXPECT_EQ(sim_idle.families.at(in_flight).samples, 0u);

  const exposition_shape sim_busy = shape_of(busy_body());
  EXPECT_EQ(sim_busy.families.at(in_flight).samples, 2u);  // the PUT and the /sync
  EXPECT_EQ(sim_busy.families.at(in_flight).labels,
            (std::set<std::string>{"method", "server_name", "servlet"}));
}

TEST(RealShape, ExtractorSeesTheSameInASimulatedAndARealBody) {
  for (const auto& [sim_body, real_file] :
       {std::pair{idle_body(), "client_sync.txt"},
        std::pair{longpoll_body(), "client_sync-during-longpoll.txt"}}) {
    SCOPED_TRACE(real_file);
    const auto s = load::extract(sim_body);
    const auto r = load::extract(read_real(real_file));
    ASSERT_TRUE(s.ok) << s.error;
    ASSERT_TRUE(r.ok) << r.error;
    // Every field the agent reads is present in both (NaN = absent).
    for (double v : {s.value.cpu_seconds, s.value.start_time, s.value.tick_sum, s.value.tick_count,
                     s.value.sched_sum, s.value.sched_count, s.value.reactor_last_seen,
                     s.value.notifier_listeners, r.value.cpu_seconds, r.value.start_time,
                     r.value.tick_sum, r.value.tick_count, r.value.sched_sum, r.value.sched_count,
                     r.value.reactor_last_seen, r.value.notifier_listeners}) {
      EXPECT_FALSE(std::isnan(v));
    }
    // A /sync long-poll is a notifier listener and not in-flight load, in both.
    EXPECT_EQ(s.value.in_flight, 0.0);
    EXPECT_EQ(r.value.in_flight, 0.0);
    EXPECT_EQ(s.value.notifier_listeners, r.value.notifier_listeners);
  }
  EXPECT_EQ(load::extract(longpoll_body()).value.notifier_listeners, 1.0);
}

// The families a name in a query or in extract.cpp refers to: x_bucket/_sum/_count of a
// histogram x is x.
std::string family_for(const std::string& name) {
  const auto& fams = real().merged.families;
  for (std::string_view suffix : {"_bucket", "_count", "_sum"}) {
    if (!name.ends_with(suffix)) continue;
    const std::string base = name.substr(0, name.size() - suffix.size());
    auto it = fams.find(base);
    if (it != fams.end() && it->second.type == "histogram") return base;
  }
  return name;
}

TEST(RealShape, SimulatorWritesEveryFamilyTheAgentAndTheDashboardRead) {
  // What load::extract reads (src/load/extract.cpp, field_of).
  std::set<std::string> wanted{
      "process_cpu_seconds_total",        "process_start_time_seconds",
      "python_twisted_reactor_tick_time", "synapse_http_server_in_flight_requests_count",
      "synapse_storage_schedule_time",    "python_twisted_reactor_last_seen",
      "synapse_notifier_listeners",
  };
  // Every Synapse metric the dashboard queries (its own synapse_spoa_* and HAProxy's aside).
  const std::string dashboard = read_file(SPOA_DASHBOARD_JSON);
  ASSERT_FALSE(dashboard.empty());
  const std::regex metric(R"(\b(?:process|python|synapse)_[a-z0-9_]+)");
  std::set<std::string> from_dashboard;
  for (auto it = std::sregex_iterator(dashboard.begin(), dashboard.end(), metric);
       it != std::sregex_iterator(); ++it) {
    const std::string name = it->str();
    if (name.starts_with("synapse_spoa_")) continue;
    from_dashboard.insert(family_for(name));
  }
  for (const char* known :
       {"process_cpu_seconds_total", "python_twisted_reactor_tick_time",
        "synapse_http_server_in_flight_requests_count", "synapse_http_server_response_time_seconds",
        "synapse_storage_schedule_time"}) {
    EXPECT_EQ(from_dashboard.count(known), 1u) << known;  // the scan finds what it should
  }
  wanted.insert(from_dashboard.begin(), from_dashboard.end());

  const exposition_shape sim = shape_of(busy_body());
  for (const auto& name : wanted) {
    SCOPED_TRACE(name);
    ASSERT_EQ(real().merged.families.count(name), 1u) << "not a real Synapse 1.160 family";
    ASSERT_EQ(sim.families.count(name), 1u) << "the simulator does not write it";
    EXPECT_GT(sim.families.at(name).samples, 0u);
  }
}

TEST(RealShape, ServerNameOnSynapseFamiliesOnlyAndTickBucketsAreSynapses) {
  const exposition_shape sim = shape_of(busy_body());
  for (const auto& [name, f] : sim.families) {
    if (f.samples == 0) continue;
    const bool synapse = name.starts_with("synapse_") && name != "synapse_build_info";
    EXPECT_EQ(f.labels.count("server_name"), synapse ? 1u : 0u) << name;
    if (name.starts_with("process_") || name.starts_with("python_")) {
      EXPECT_TRUE(f.labels.empty()) << name;
    }
  }
  EXPECT_EQ(sim.families.at("python_twisted_reactor_tick_time").le,
            (std::vector<std::string>{"0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1",
                                      "0.2", "0.5", "1.0", "2.0", "5.0", "+Inf"}));
}

}  // namespace
}  // namespace spoa::sim
