#include "config/load.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace spoa::config {
namespace {

using std::chrono::milliseconds;

// Loads `yaml` as "t.yaml" and returns the error message, or "OK".
std::string error_of(const std::string& yaml) {
  auto r = load_string(yaml, "t.yaml");
  if (auto* e = std::get_if<load_error>(&r)) return e->message;
  return "OK";
}

agent_config must_load(const std::string& yaml, const std::string& source = "t.yaml") {
  auto r = load_string(yaml, source);
  if (auto* e = std::get_if<load_error>(&r)) {
    ADD_FAILURE() << e->message;
    return {};
  }
  return std::get<agent_config>(std::move(r));
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string scratch_dir() {
  const std::string dir = SPOA_TEST_TMPDIR;
  std::filesystem::create_directories(dir);
  return dir;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

void expect_rule(const routing::rule_spec& r, const std::string& name, const std::string& methods,
                 const std::string& pattern, const std::string& pool, routing::key_kind key,
                 const std::string& if_query_absent, const std::string& source) {
  EXPECT_EQ(r.name, name);
  EXPECT_EQ(r.methods, methods) << name;
  EXPECT_EQ(r.pattern, pattern) << name;
  EXPECT_EQ(r.pool, pool) << name;
  EXPECT_EQ(r.key, key) << name;
  EXPECT_EQ(r.if_query_absent, if_query_absent) << name;
  EXPECT_EQ(r.source, source) << name;
}

// --- the embedded default -------------------------------------------------------------------

TEST(default_config, embedded_text_is_the_file_verbatim) {
  EXPECT_EQ(default_yaml(), read_all(SPOA_DEFAULT_CONFIG_YAML));
}

TEST(default_config, tunables_equal_the_struct_defaults) {
  // The embedded document restates the defaults of config.hpp; if one side changes, this fails.
  const agent_config c = default_config();
  EXPECT_EQ(c.placement, placement{});
  EXPECT_EQ(c.load, load{});
  EXPECT_EQ(c.spop, spop{});
  EXPECT_EQ(c.shared, shared{});
  const agent_config d;
  EXPECT_EQ(c.listen, d.listen);
  EXPECT_EQ(c.metrics_listen, d.metrics_listen);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.log_format, d.log_format);
  EXPECT_EQ(d.log_format, "text");  // the default is the text format the agent always had
  EXPECT_EQ(c.source, "<embedded default>");
  EXPECT_TRUE(c.routes.empty());
  EXPECT_TRUE(c.route_retarget.empty());
  EXPECT_FALSE(c.routes_replace_defaults);
}

TEST(default_config, reference_topology) {
  const agent_config c = default_config();
  using routing::key_kind;
  const std::vector<pool> pools{
      {"main", "synapse_main", balance_mode::least_loaded, key_kind::none},
      {"client_sync", "synapse_client_sync", balance_mode::affinity, key_kind::user},
      {"room", "synapse_room", balance_mode::affinity, key_kind::room},
      {"federation_reader", "synapse_federation_reader", balance_mode::affinity, key_kind::origin},
      {"media", "synapse_media", balance_mode::least_loaded, key_kind::none},
  };
  EXPECT_EQ(c.pools, pools);
  const auto w = [](std::string name, std::string pool, int port) {
    worker x;
    x.server = name;
    x.name = std::move(name);
    x.pool = std::move(pool);
    x.metrics = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    return x;
  };
  const std::vector<worker> workers{
      w("main", "main", 9100),
      w("client_sync1", "client_sync", 9101),
      w("room1", "room", 9111),
      w("room2", "room", 9112),
      w("room3", "room", 9113),
      w("room4", "room", 9114),
      w("federation_reader1", "federation_reader", 9105),
      w("media1", "media", 9106),
      w("tasks1", "", 9107),
      w("federation_sender1", "", 9121),
      w("federation_sender2", "", 9122),
      w("federation_sender3", "", 9123),
      w("federation_sender4", "", 9124),
  };
  EXPECT_EQ(c.workers, workers);
}

TEST(default_config, round_trips_through_load_string) {
  const agent_config a = default_config();
  const agent_config b = must_load(std::string(default_yaml()), "copy.yaml");
  EXPECT_EQ(b.source, "copy.yaml");
  EXPECT_EQ(a.pools, b.pools);
  EXPECT_EQ(a.workers, b.workers);
  EXPECT_EQ(a.placement, b.placement);
  EXPECT_EQ(a.load, b.load);
  EXPECT_EQ(a.spop, b.spop);
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.metrics_listen, b.metrics_listen);
}

// --- a user file is complete on its own -------------------------------------------------------

TEST(load_string, minimal_file_takes_struct_defaults_not_the_embedded_document) {
  const agent_config c = must_load(
      "pools:\n"
      "  only: {backend: be}\n"
      "workers:\n"
      "  - {name: w1, pool: only}\n");
  EXPECT_EQ(
      c.pools,
      (std::vector<pool>{{"only", "be", balance_mode::least_loaded, routing::key_kind::none}}));
  ASSERT_EQ(c.workers.size(), 1u);
  EXPECT_EQ(c.workers[0].server, "w1");
  EXPECT_EQ(c.workers[0].weight, 1.0);
  EXPECT_EQ(c.workers[0].metrics, "");
  EXPECT_FALSE(c.workers[0].drain);
  EXPECT_EQ(c.placement, placement{});
  EXPECT_EQ(c.load, load{});
  EXPECT_EQ(c.spop, spop{});
  EXPECT_EQ(c.listen, "127.0.0.1:12345");
  EXPECT_TRUE(c.routes.empty());
}

TEST(load_string, empty_sections_are_the_same_as_omitted_ones) {
  const agent_config c = must_load(
      "pools:\n"
      "  only: {backend: be}\n"
      "workers:\n"
      "  - {name: w1, pool: only}\n"
      "routes:\n"
      "placement:\n"
      "load: {}\n"
      "spop:\n"
      "  allow_from:\n");
  EXPECT_EQ(c.placement, placement{});
  EXPECT_EQ(c.load, load{});
  EXPECT_EQ(c.spop, spop{});
}

// --- a custom document, every key set ----------------------------------------------------------

TEST(load_string, custom_document_parses_into_exact_structs) {
  const std::string yaml =
      "listen: '[::1]:0'\n"                                                 // 1
      "metrics_listen: 0.0.0.0:9999\n"                                      // 2
      "log_level: debug\n"                                                  // 3
      "pools:\n"                                                            // 4
      "  main: {backend: be_main}\n"                                        // 5
      "  push_writer:\n"                                                    // 6
      "    backend: be_push\n"                                              // 7
      "    balance: affinity\n"                                             // 8
      "    key: user\n"                                                     // 9
      "  events: {backend: be.events:1, balance: affinity, key: room}\n"    // 10
      "workers:\n"                                                          // 11
      "  - name: main\n"                                                    // 12
      "    pool: main\n"                                                    // 13
      "    metrics: http://[::1]:9100/_synapse/metrics\n"                   // 14
      "  - {name: push1, pool: push_writer, server: srv_a, weight: 2.5}\n"  // 15
      "  - {name: push2, pool: push_writer, server: srv_b, drain: true}\n"  // 16
      "  - {name: ev1, pool: events, weight: 0.5, drain: false}\n"          // 17
      "  - {name: bg, metrics: 'http://bg:9000'}\n"                         // 18
      "routes:\n"                                                           // 19
      "  prepend:\n"                                                        // 20
      "    - name: push_rules\n"                                            // 21
      "      methods: GET|PUT|DELETE\n"                                     // 22
      "      pattern: /_matrix/client/{r0|v3}/pushrules/{*}\n"              // 23
      "      pool: push_writer\n"                                           // 24
      "    - {name: initial_sync, methods: GET, pattern: /_matrix/client/v3/sync, pool: events,"
      " key: user, if_query_absent: since}\n"                         // 25
      "    - {name: anything, pattern: /x, pool: main, key: none}\n"  // 26
      "  retarget:\n"                                                 // 27
      "    client_pushrules_write: push_writer\n"                     // 28
      "    room_messages: events\n"                                   // 29
      "  replace_defaults: false\n"                                   // 30
      "placement:\n"
      "  balance_factor: 1.15\n"
      "  overload_factor: 3\n"
      "  overload_after: 1m30s\n"
      "  affinity_ttl: 2d\n"
      "  max_keys: 5000\n"
      "  max_moves_per_second: 7.5\n"
      "  hash_key: s3cret\n"
      "  snapshot: /var/lib/synapse-spoa/affinity.msgpack\n"
      "  snapshot_interval: 5m\n"
      "  load_half_life: 30s\n"
      "  return_after: 2m\n"
      "  return_per_second: 0\n"
      "load:\n"
      "  scrape_interval: 5s\n"
      "  scrape_timeout: 4500ms\n"
      "  max_body_bytes: 1048576\n"
      "  ewma_alpha: 1\n"
      "  hot_cpu: 1.5\n"
      "  cool_cpu: 1.5\n"
      "  hot_reactor_lag: 1s\n"
      "  cool_reactor_lag: 250ms\n"
      "  down_after_failures: 5\n"
      "  stale_after: 1m\n"
      "  stall_down_after: 9501ms\n"
      "  reactor_stall_after: 5s\n"
      "spop:\n"
      "  max_frame_size: 65532\n"
      "  idle_timeout: 1h\n"
      "  hello_timeout: 250ms\n"
      "  max_connections: 10\n"
      "  max_pipelined: 1\n"
      "  allow_from: [127.0.0.1, 10.0.0.0/8, 'fd00::/8']\n";
  const agent_config c = must_load(yaml, "custom.yaml");
  using routing::key_kind;

  EXPECT_EQ(c.source, "custom.yaml");
  EXPECT_EQ(c.listen, "[::1]:0");
  EXPECT_EQ(c.metrics_listen, "0.0.0.0:9999");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "text");  // not set in the document
  EXPECT_EQ(c.pools, (std::vector<pool>{
                         {"main", "be_main", balance_mode::least_loaded, key_kind::none},
                         {"push_writer", "be_push", balance_mode::affinity, key_kind::user},
                         {"events", "be.events:1", balance_mode::affinity, key_kind::room},
                     }));
  EXPECT_EQ(c.workers,
            (std::vector<worker>{
                {"main", "main", "main", 1.0, "http://[::1]:9100/_synapse/metrics", false},
                {"push1", "push_writer", "srv_a", 2.5, "", false},
                {"push2", "push_writer", "srv_b", 1.0, "", true},
                {"ev1", "events", "ev1", 0.5, "", false},
                {"bg", "", "bg", 1.0, "http://bg:9000", false},
            }));

  ASSERT_EQ(c.routes.size(), 3u);
  expect_rule(c.routes[0], "push_rules", "GET|PUT|DELETE", "/_matrix/client/{r0|v3}/pushrules/{*}",
              "push_writer", key_kind::user /* inherited from the pool */, "", "custom.yaml:21");
  expect_rule(c.routes[1], "initial_sync", "GET", "/_matrix/client/v3/sync", "events",
              key_kind::user, "since", "custom.yaml:25");
  expect_rule(c.routes[2], "anything", "*", "/x", "main", key_kind::none, "", "custom.yaml:26");
  EXPECT_EQ(c.route_retarget, (std::vector<std::pair<std::string, std::string>>{
                                  {"client_pushrules_write", "push_writer"},
                                  {"room_messages", "events"},
                              }));
  EXPECT_FALSE(c.routes_replace_defaults);

  placement p;
  p.balance_factor = 1.15;
  p.overload_factor = 3.0;
  p.overload_after = milliseconds{90'000};
  p.affinity_ttl = milliseconds{2 * 86'400'000};
  p.max_keys = 5000;
  p.max_moves_per_second = 7.5;
  p.hash_key = "s3cret";
  p.snapshot = "/var/lib/synapse-spoa/affinity.msgpack";
  p.snapshot_interval = milliseconds{300'000};
  p.load_half_life = milliseconds{30'000};
  p.return_after = milliseconds{120'000};
  p.return_per_second = 0;
  EXPECT_EQ(c.placement, p);

  load l;
  l.scrape_interval = milliseconds{5'000};
  l.scrape_timeout = milliseconds{4'500};
  l.max_body_bytes = 1'048'576;
  l.ewma_alpha = 1.0;
  l.hot_cpu = 1.5;
  l.cool_cpu = 1.5;
  l.hot_reactor_lag = 1.0;
  l.cool_reactor_lag = 0.25;
  l.down_after_failures = 5;
  l.stale_after = milliseconds{60'000};
  l.stall_down_after = milliseconds{9'501};
  l.reactor_stall_after = milliseconds{5'000};
  EXPECT_EQ(c.load, l);

  spop s;
  s.max_frame_size = 65532;
  s.idle_timeout = milliseconds{3'600'000};
  s.hello_timeout = milliseconds{250};
  s.max_connections = 10;
  s.max_pipelined = 1;
  s.allow_from = {"127.0.0.1", "10.0.0.0/8", "fd00::/8"};
  EXPECT_EQ(c.spop, s);
}

TEST(load_string, replace_defaults_with_rules) {
  const agent_config c = must_load(
      "pools: {main: {backend: b}}\n"
      "workers: [{name: a, pool: main}]\n"
      "routes:\n"
      "  replace_defaults: true\n"
      "  prepend: [{name: all, pattern: /, pool: main}]\n");
  EXPECT_TRUE(c.routes_replace_defaults);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].source, "t.yaml:5");
}

// --- bad documents: the exact message ----------------------------------------------------------

// A valid document; most cases append one bad section to it (lines 5+).
#define kBase                         \
  "pools:\n"                          \
  "  main: {backend: synapse_main}\n" \
  "workers:\n"                        \
  "  - {name: main, pool: main}\n"

struct bad_case {
  const char* yaml;
  const char* message;
};

const bad_case bad_cases[] = {
    {"", "t.yaml:1:1: pools: missing required key"},
    {"- a\n- b\n", "t.yaml:1:1: (root): expected a mapping (got a sequence)"},
    {"pools: {main: {backend: b}}\n", "t.yaml:1:1: workers: missing required key"},
    {"workers: []\n", "t.yaml:1:1: pools: missing required key"},
    {kBase "lissten: 127.0.0.1:1\n",
     "t.yaml:5:1: lissten: unknown key 'lissten' (did you mean 'listen'?)"},
    {kBase "placement:\n  balence_factor: 1.5\n",
     "t.yaml:6:3: placement.balence_factor: unknown key 'balence_factor' (did you mean "
     "'balance_factor'?)"},
    {kBase "placement:\n  zzz: 1\n",
     "t.yaml:6:3: placement.zzz: unknown key 'zzz' (expected one of: balance_factor, "
     "overload_factor, overload_after, affinity_ttl, max_keys, max_moves_per_second, hash_key, "
     "snapshot, snapshot_interval, load_half_life, return_after, return_per_second)"},
    {kBase "listen: 127.0.0.1\n",
     "t.yaml:5:9: listen: expected IP:PORT or [IPV6]:PORT (got '127.0.0.1')"},
    {kBase "listen: [a]\n", "t.yaml:5:9: listen: expected a string (got a sequence)"},
    {kBase "metrics_listen: '::1:9464'\n",
     "t.yaml:5:17: metrics_listen: expected IP:PORT or [IPV6]:PORT (got '::1:9464')"},
    {kBase "log_level: verbose\n",
     "t.yaml:5:12: log_level: expected debug, info, warn or error (got 'verbose')"},
    {kBase "log_format: yaml\n", "t.yaml:5:13: log_format: expected text or json (got 'yaml')"},
    {kBase "log_format: JSON\n", "t.yaml:5:13: log_format: expected text or json (got 'JSON')"},
    {kBase "log_format: [json]\n", "t.yaml:5:13: log_format: expected a string (got a sequence)"},
    {kBase "log_formt: json\n",
     "t.yaml:5:1: log_formt: unknown key 'log_formt' (did you mean 'log_format'?)"},
    {kBase "placement:\n  balance_factor: 0.9\n",
     "t.yaml:6:19: placement.balance_factor: must be in [1, 100] (got '0.9')"},
    {kBase "placement:\n  balance_factor: 1.5\n  overload_factor: 1.2\n",
     "t.yaml:7:20: placement.overload_factor: must be >= balance_factor (1.5) (got '1.2')"},
    {kBase "placement:\n  balance_factor: 3\n",
     "t.yaml:6:19: placement.balance_factor: must be <= overload_factor (2) (got '3')"},
    {kBase "placement:\n  balance_factor: .nan\n",
     "t.yaml:6:19: placement.balance_factor: must be a finite number (got '.nan')"},
    {kBase "placement:\n  overload_factor: .inf\n",
     "t.yaml:6:20: placement.overload_factor: must be a finite number (got '.inf')"},
    {kBase "placement:\n  balance_factor: fast\n",
     "t.yaml:6:19: placement.balance_factor: expected a number (got 'fast')"},
    {kBase "placement:\n  max_keys: 0\n",
     "t.yaml:6:13: placement.max_keys: must be between 1 and 100000000 (got '0')"},
    {kBase "placement:\n  max_keys: 1.5\n",
     "t.yaml:6:13: placement.max_keys: expected an integer (got '1.5')"},
    {kBase "placement:\n  max_keys: 99999999999999999999999\n",
     "t.yaml:6:13: placement.max_keys: must be between 1 and 100000000 (got "
     "'99999999999999999999999')"},
    {kBase "placement:\n  affinity_ttl: 10\n",
     "t.yaml:6:17: placement.affinity_ttl: expected a duration like 250ms, 2s, 5m, 1h or 1d, at "
     "most 365d (got '10')"},
    {kBase "placement:\n  affinity_ttl: 0s\n",
     "t.yaml:6:17: placement.affinity_ttl: must be more than 0 (got '0s')"},
    {kBase "placement:\n  affinity_ttl:\n",
     "t.yaml:6:3: placement.affinity_ttl: expected a duration like 250ms, 2s, 5m, 1h or 1d (got "
     "null)"},
    {kBase "placement: [1, 2]\n", "t.yaml:5:12: placement: expected a mapping (got a sequence)"},
    {kBase "load:\n  ewma_alpha: 0\n", "t.yaml:6:15: load.ewma_alpha: must be in (0, 1] (got '0')"},
    {kBase "load:\n  ewma_alpha: 1.5\n",
     "t.yaml:6:15: load.ewma_alpha: must be in (0, 1] (got '1.5')"},
    {kBase "load:\n  hot_cpu: 0.5\n",
     "t.yaml:6:12: load.hot_cpu: must be >= cool_cpu (0.7) (got '0.5')"},
    {kBase "load:\n  cool_cpu: 0.9\n",
     "t.yaml:6:13: load.cool_cpu: must be <= hot_cpu (0.85) (got '0.9')"},
    {kBase "load:\n  hot_reactor_lag: 10ms\n",
     "t.yaml:6:20: load.hot_reactor_lag: must be >= cool_reactor_lag (20ms) (got '10ms')"},
    {kBase "load:\n  cool_reactor_lag: 60ms\n",
     "t.yaml:6:21: load.cool_reactor_lag: must be <= hot_reactor_lag (50ms) (got '60ms')"},
    {kBase "load:\n  scrape_timeout: 1s\n",
     "t.yaml:6:19: load.scrape_timeout: must be less than scrape_interval (1s) (got '1s')"},
    {kBase "load:\n  scrape_interval: 500ms\n",
     "t.yaml:6:20: load.scrape_interval: must be more than scrape_timeout (750ms) (got '500ms')"},
    {kBase "load:\n  scrape_interval: 50ms\n",
     "t.yaml:6:20: load.scrape_interval: must be at least 100ms (got '50ms')"},
    {kBase "load:\n  stale_after: 500ms\n",
     "t.yaml:6:16: load.stale_after: must be at least scrape_interval (1s) (got '500ms')"},
    {kBase "load:\n  scrape_interval: 20s\n  scrape_timeout: 1s\n",
     "t.yaml:6:20: load.scrape_interval: must be at most stale_after (10s) (got '20s')"},
    // Issue 18: the stall window must leave room for one timed-out scrape ("stalled") first.
    {kBase "load:\n  stall_down_after: 1750ms\n",
     "t.yaml:6:21: load.stall_down_after: must be more than scrape_interval + scrape_timeout "
     "(1s750ms) (got '1750ms')"},
    {kBase "load:\n  scrape_interval: 2500ms\n",
     "t.yaml:6:20: load.scrape_interval: scrape_interval + scrape_timeout (3s250ms) must be less "
     "than stall_down_after (3s) (got '2500ms')"},
    {kBase "load:\n  scrape_interval: 2s\n  scrape_timeout: 1s\n",
     "t.yaml:7:19: load.scrape_timeout: scrape_interval + scrape_timeout (3s) must be less than "
     "stall_down_after (3s) (got '1s')"},
    {kBase "load:\n  stall_down_after: 0s\n",
     "t.yaml:6:21: load.stall_down_after: must be more than 0 (got '0s')"},
    {kBase "load:\n  reactor_stall_after: fast\n",
     "t.yaml:6:24: load.reactor_stall_after: expected a duration like 250ms, 2s, 5m, 1h or 1d, "
     "at most 365d (got 'fast')"},
    {kBase "placement:\n  return_per_second: -1\n",
     "t.yaml:6:22: placement.return_per_second: must be in [0, 1000000] (got '-1')"},
    {kBase "placement:\n  return_after: 1y\n",
     "t.yaml:6:17: placement.return_after: expected a duration like 250ms, 2s, 5m, 1h or 1d, "
     "at most 365d (got '1y')"},
    {kBase "load:\n  down_after_failures: -1\n",
     "t.yaml:6:24: load.down_after_failures: must be between 1 and 1000 (got '-1')"},
    {kBase "load:\n  hot_db_busy: 1.5\n",
     "t.yaml:6:16: load.hot_db_busy: must be in [0, 1] (got '1.5')"},
    {kBase "load:\n  hot_db_busy: 0.5\n  cool_db_busy: 0.6\n",
     "t.yaml:7:17: load.cool_db_busy: must be <= hot_db_busy (0.5) (got '0.6')"},
    {kBase "load:\n  hot_in_flight: 8\n  cool_in_flight: 9\n",
     "t.yaml:7:19: load.cool_in_flight: must be <= hot_in_flight (8) (got '9')"},
    {kBase "load:\n  capacity_knee: 1\n",
     "t.yaml:6:18: load.capacity_knee: must be in [0, 0.99] (got '1')"},
    {kBase "load:\n  hot_capacity: 0\n",
     "t.yaml:6:17: load.hot_capacity: must be in (0, 1] (got '0')"},
    {kBase "spop:\n  max_frame_size: 255\n",
     "t.yaml:6:19: spop.max_frame_size: must be between 256 and 65532 (got '255')"},
    {kBase "spop:\n  max_frame_size: 65533\n",
     "t.yaml:6:19: spop.max_frame_size: must be between 256 and 65532 (got '65533')"},
    {kBase "spop:\n  allow_from: [10.0.0.0/8, bogus]\n",
     "t.yaml:6:28: spop.allow_from[1]: expected an IP address or CIDR like 10.0.0.0/8 (got "
     "'bogus')"},
    {kBase "spop:\n  allow_from: 10.0.0.0/8\n",
     "t.yaml:6:15: spop.allow_from: expected a sequence (got '10.0.0.0/8')"},
    {"pools:\n  main: {backend: synapse_main}\n  room: {backend: synapse_room, balance: affinity, "
     "key: room}\nworkers:\n  - {name: main, pool: main}\n",
     "t.yaml:3:3: pools.room: pool has no workers"},
    {kBase "  - {name: main, pool: main}\n",
     "t.yaml:5:12: workers[1].name: duplicate worker name (first at workers[0]) (got 'main')"},
    {"pools:\n  main: {backend: synapse_main}\nworkers:\n  - {name: a, pool: main, server: s1}\n  "
     "- {name: b, pool: main, server: s1}\n",
     "t.yaml:5:35: workers[1].server: duplicate server 's1' in pool 'main' (first at workers[0]) "
     "(got 's1')"},
    {"pools:\n  main: {backend: synapse_main}\nworkers:\n  - {name: a, pool: main, server: b}\n  - "
     "{name: b, pool: main}\n",
     "t.yaml:5:12: workers[1].name: duplicate server 'b' in pool 'main' (first at workers[0]) (got "
     "'b')"},
    {"pools:\n  main: {backend: synapse_main}\nworkers:\n  - {name: a, pool: mian}\n",
     "t.yaml:4:21: workers[0].pool: unknown pool (pools are: main) (got 'mian')"},
    {"pools:\n  main: {backend: synapse_main}\nworkers:\n  - {name: a, pool: main, weight: 0}\n",
     "t.yaml:4:35: workers[0].weight: must be in (0, 1000000] (got '0')"},
    {"pools:\n  main: {backend: synapse_main}\nworkers:\n  - {name: a, pool: main, weight: -2}\n",
     "t.yaml:4:35: workers[0].weight: must be in (0, 1000000] (got '-2')"},
    {"pools:\n  main: {backend: synapse_main, balance: random}\nworkers:\n  - {name: a, pool: "
     "main}\n",
     "t.yaml:2:42: pools.main.balance: expected affinity or least_loaded (got 'random')"},
    {"pools:\n  main: {backend: synapse_main, balance: affinity, key: device}\nworkers:\n  - "
     "{name: a, pool: main}\n",
     "t.yaml:2:57: pools.main.key: expected room, user, origin or none (got 'device')"},
    {"pools:\n  main: {backend: synapse_main, balance: affinity}\nworkers:\n  - {name: a, pool: "
     "main}\n",
     "t.yaml:2:42: pools.main.balance: needs a key: room, user or origin (got 'affinity')"},
    {"pools:\n  main: {backend: synapse_main, balance: affinity, key: none}\nworkers:\n  - {name: "
     "a, pool: main}\n",
     "t.yaml:2:57: pools.main.key: balance affinity needs key room, user or origin (got 'none')"},
    {"pools:\n  main: {backend: synapse_main, key: room}\nworkers:\n  - {name: a, pool: main}\n",
     "t.yaml:2:38: pools.main.key: must be none with balance least_loaded (got 'room')"},
    {"pools:\n  main: {backend: 'synapse main'}\nworkers:\n  - {name: a, pool: main}\n",
     "t.yaml:2:19: pools.main.backend: expected a name made of A-Z a-z 0-9 _ . : - (got 'synapse "
     "main')"},
    {"pools:\n  main: {balance: least_loaded}\nworkers:\n  - {name: a, pool: main}\n",
     "t.yaml:2:9: pools.main.backend: missing required key"},
    {"pools:\n  main: {backend: b}\n  other: {backend: b}\nworkers:\n  - {name: a, pool: main}\n",
     "t.yaml:3:20: pools.other.backend: backend already used by pool 'main' (got 'b')"},
    {"pools: {}\nworkers: []\n", "t.yaml:1:8: pools: expected at least one pool (got a mapping)"},
    {"pools:\n  main: {backend: b}\nworkers:\n  - {pool: main}\n",
     "t.yaml:4:5: workers[0].name: missing required key"},
    {"pools:\n  main: {backend: b}\nworkers:\n  - a\n",
     "t.yaml:4:5: workers[0]: expected a mapping (got 'a')"},
    {"pools:\n  main: {backend: b}\nworkers:\n  - {name: a, pool: main, metrics: "
     "'https://h:1/metrics'}\n",
     "t.yaml:4:36: workers[0].metrics: only http:// is supported (no TLS) (got "
     "'https://h:1/metrics')"},
    {"pools:\n  main: {backend: b}\nworkers:\n  - {name: a, pool: main, metrics: "
     "'h:9100/metrics'}\n",
     "t.yaml:4:36: workers[0].metrics: expected http://HOST:PORT/PATH (got 'h:9100/metrics')"},
    {"pools:\n  main: {backend: b}\nworkers:\n  - {name: a, pool: main, drain: yes}\n",
     "t.yaml:4:34: workers[0].drain: expected true or false (got 'yes')"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: /x}\n",
     "t.yaml:7:7: routes.prepend[0].pool: missing required key"},
    {kBase "routes:\n  prepend:\n    - {pattern: /x, pool: main}\n",
     "t.yaml:7:7: routes.prepend[0].name: missing required key"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pool: main}\n",
     "t.yaml:7:7: routes.prepend[0].pattern: missing required key"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: /x, pool: main, methods: get}\n",
     "t.yaml:7:52: routes.prepend[0].methods: expected * or uppercase methods joined by |, like "
     "GET|HEAD (got 'get')"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: /x, pool: main, methods: 'GET||HEAD'}\n",
     "t.yaml:7:52: routes.prepend[0].methods: expected * or uppercase methods joined by |, like "
     "GET|HEAD (got 'GET||HEAD')"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: /x, pool: main}\n    - {name: r1, "
           "pattern: /y, pool: main}\n",
     "t.yaml:8:14: routes.prepend[1].name: duplicate rule name (first at routes.prepend[0]) (got "
     "'r1')"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: x, pool: main}\n",
     "t.yaml:7:27: routes.prepend[0].pattern: must start with / (got 'x')"},
    {kBase "routes:\n  prepend:\n    - {name: r1, pattern: /x, pool: main, key: device}\n",
     "t.yaml:7:48: routes.prepend[0].key: expected room, user, origin or none (got 'device')"},
    {kBase "routes:\n  retarget: {client_pushrules_write: push_writer}\n",
     "t.yaml:6:38: routes.retarget.client_pushrules_write: unknown pool (pools are: main) (got "
     "'push_writer')"},
    {kBase "routes:\n  replace_defaults: true\n",
     "t.yaml:6:21: routes.replace_defaults: true needs at least one rule in routes.prepend (got "
     "'true')"},
    {kBase "routes:\n  prepend: {}\n",
     "t.yaml:6:12: routes.prepend: expected a sequence (got a mapping)"},
    {kBase "placement:\n  balance_factor: 1.5\n  balance_factor: 1.6\n",
     "t.yaml:7:3: placement.balance_factor: duplicate key (first at line 6)"},
    {kBase "listen: [\n", "t.yaml:6:1: invalid YAML: end of sequence flow not found"},
    {kBase "---\npools: {}\n", "t.yaml:6:1: (root): expected one YAML document, found more"},
    // Regression: yaml-cpp 0.7's LoadAll loops allocating forever on a top-level ','.
    {",\n", "t.yaml:1:1: invalid YAML: unexpected ','"},
    {"# synapse-spoa\n, This document is compiled i[tozthe ",
     "t.yaml:2:1: invalid YAML: unexpected ','"},
    {kBase "log_level: \"a\\x01b\"\n",
     "t.yaml:5:12: log_level: expected debug, info, warn or error (got 'a\\x01b')"},
    {kBase "placement:\n  hash_key: [1]\n",
     "t.yaml:6:13: placement.hash_key: expected a string (got a sequence)"},
    {kBase "? [a]\n: 1\n", "t.yaml:5:3: (root): keys must be plain strings"},
    // The agent binds without resolving names.
    {kBase "listen: localhost:12345\n",
     "t.yaml:5:9: listen: expected IP:PORT or [IPV6]:PORT (got 'localhost:12345')"},
    // Several documents in one file: which one was meant is ambiguous.
    {kBase "---\n" kBase, "t.yaml:6:1: (root): expected one YAML document, found more"},
    // Regression: yaml-cpp 0.7's LoadAll loops allocating forever on a top-level ','.
    {",\n", "t.yaml:1:1: invalid YAML: unexpected ','"},
    {"# synapse-spoa\n, This document is compiled i[tozthe ",
     "t.yaml:2:1: invalid YAML: unexpected ','"},
    // A pool name that HAProxy could not use in a variable.
    {"pools:\n  'my pool': {backend: b}\nworkers: []\n",
     "t.yaml:2:3: pools.my pool: pool name must be made of A-Z a-z 0-9 _ . : - (got 'my pool')"},
    // Long values are cut so the message stays one readable line.
    {kBase
     "log_level: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "t.yaml:5:12: log_level: expected debug, info, warn or error (got "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...')"},
    {kBase "workers: []\n", "t.yaml:5:1: workers: duplicate key (first at line 3)"},
    {kBase "load:\n  haproxy_metrics: ftp://x/metrics\n",
     "t.yaml:6:20: load.haproxy_metrics: expected http://HOST:PORT/PATH (HAProxy's "
     "prometheus-exporter) (got 'ftp://x/metrics')"},
    {kBase "shared:\n  load_interval: 50ms\n",
     "t.yaml:6:18: shared.load_interval: must be at least 100ms (got '50ms')"},
};

TEST(load_string, log_format_json_and_text) {
  EXPECT_EQ(must_load(kBase "log_format: json\n").log_format, "json");
  EXPECT_EQ(must_load(kBase "log_format: text\n").log_format, "text");
  EXPECT_EQ(must_load(kBase).log_format, "text");
}

TEST(load_string, bad_documents_give_exact_messages) {
  static_assert(std::size(bad_cases) >= 30);
  for (const bad_case& c : bad_cases) {
    EXPECT_EQ(error_of(c.yaml), c.message) << "document:\n" << c.yaml;
  }
}

TEST(load_string, every_message_is_one_line) {
  for (const bad_case& c : bad_cases) {
    EXPECT_EQ(std::string(c.message).find('\n'), std::string::npos) << c.message;
  }
}

TEST(load_string, too_large_is_rejected_before_parsing) {
  // Not valid YAML either: the size check must come first.
  const std::string big(max_config_bytes + 1, '[');
  EXPECT_EQ(error_of(big), "t.yaml: config file too large (got 1048577 bytes, limit 1048576)");
  // Exactly the limit is parsed (and here fails as YAML, not on size).
  std::string at_limit = kBase;
  at_limit.resize(max_config_bytes, '\n');
  EXPECT_EQ(error_of(at_limit), "OK");
}

TEST(load_string, deep_nesting_is_an_error_not_a_crash) {
  // yaml-cpp bounds its recursion depth; the loader turns that into an ordinary message.
  for (const std::string& deep :
       {"pools: " + std::string(100'000, '[') + "\n",
        "pools: " + std::string(100'000, '[') + std::string(100'000, ']') + "\n",
        "pools: " + std::string(100'000, '{') + "\n"}) {
    const std::string msg = error_of(deep);
    EXPECT_EQ(msg.rfind("t.yaml:", 0), 0u) << msg;
    EXPECT_NE(msg.find(": invalid YAML: "), std::string::npos) << msg;
  }
}

TEST(load_string, binary_garbage_is_an_error_not_a_crash) {
  std::string junk;
  std::uint32_t x = 12345;  // fixed-seed LCG: deterministic bytes
  for (int i = 0; i < 4096; ++i) {
    x = x * 1664525u + 1013904223u;
    junk += static_cast<char>(x >> 24);
  }
  EXPECT_NE(error_of(junk), "OK");
}

// Seeded mutations of the embedded default (byte flips, insertions, cuts, truncation): every
// result is a config or one line naming the source. This is how the yaml-cpp LoadAll loop above
// was found; the 2000 cases here run in well under a second.
TEST(load_string, mutated_default_documents_load_or_fail_with_one_line) {
  std::mt19937 rng(42);
  const std::string base(default_yaml());
  const std::string alphabet =
      std::string("[]{}:,-#&*!|>'\"\n \t?%@`0123456789abcxyz.\\\x01") + '\xff';
  for (int i = 0; i < 2000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t pos = rng() % s.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 4) {
        case 0:
          s[pos] = c;
          break;
        case 1:
          s.erase(pos, 1 + rng() % 20);
          break;
        case 2:
          s.insert(pos, 1, c);
          break;
        default:
          s.resize(pos);
          break;
      }
    }
    auto r = load_string(s, "f.yaml");
    if (auto* e = std::get_if<load_error>(&r)) {
      EXPECT_EQ(e->message.rfind("f.yaml", 0), 0u) << e->message;
      EXPECT_EQ(e->message.find('\n'), std::string::npos) << e->message;
      EXPECT_EQ(e->message.find("cannot load"), std::string::npos) << e->message;
    }
  }
}

// --- load_file ---------------------------------------------------------------------------------

TEST(load_file, missing_file) {
  const std::string path = scratch_dir() + "/does-not-exist.yaml";
  auto r = load_file(path);
  ASSERT_TRUE(std::holds_alternative<load_error>(r));
  EXPECT_EQ(std::get<load_error>(r).message, path + ": cannot read: No such file or directory");
}

TEST(load_file, directory) {
  const std::string path = scratch_dir();
  auto r = load_file(path);
  ASSERT_TRUE(std::holds_alternative<load_error>(r));
  EXPECT_EQ(std::get<load_error>(r).message, path + ": cannot read: Is a directory");
}

TEST(load_file, too_large_file) {
  const std::string path = scratch_dir() + "/too-large.yaml";
  write_file(path, std::string(2 * max_config_bytes, '#'));
  auto r = load_file(path);
  ASSERT_TRUE(std::holds_alternative<load_error>(r));
  EXPECT_EQ(std::get<load_error>(r).message,
            path + ": config file too large (got 2097152 bytes, limit 1048576)");
}

TEST(load_file, good_file_names_itself_in_source_and_rules) {
  const std::string path = scratch_dir() + "/good.yaml";
  write_file(path,
             "pools: {main: {backend: b}}\n"
             "workers: [{name: a, pool: main}]\n"
             "routes:\n"
             "  prepend:\n"
             "    - {name: r, pattern: /x, pool: main}\n");
  auto r = load_file(path);
  ASSERT_TRUE(std::holds_alternative<agent_config>(r)) << std::get<load_error>(r).message;
  const agent_config& c = std::get<agent_config>(r);
  EXPECT_EQ(c.source, path);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].source, path + ":5");
}

TEST(load_file, error_in_file_names_file_line_and_column) {
  const std::string path = scratch_dir() + "/bad.yaml";
  write_file(path, kBase "placement:\n  balance_factor: 0.5\n");
  auto r = load_file(path);
  ASSERT_TRUE(std::holds_alternative<load_error>(r));
  EXPECT_EQ(std::get<load_error>(r).message,
            path + ":6:19: placement.balance_factor: must be in [1, 100] (got '0.5')");
}

TEST(load_file, unreadable_file) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of mode";
  const std::string path = scratch_dir() + "/unreadable.yaml";
  write_file(path, kBase);
  ::chmod(path.c_str(), 0);
  auto r = load_file(path);
  ::chmod(path.c_str(), 0644);
  ASSERT_TRUE(std::holds_alternative<load_error>(r));
  EXPECT_EQ(std::get<load_error>(r).message, path + ": cannot read: Permission denied");
}

}  // namespace
}  // namespace spoa::config
