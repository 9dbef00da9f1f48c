// The components' options sections: `placement:`, `load:`, `spop:`. Each fills the component's
// own options struct (config.hpp), whose defaults stand for every key not written.

#include <cmath>

#include "config/duration.hpp"
#include "config/endpoint.hpp"
#include "config/reader.hpp"

namespace spoa::config::detail {

void loader::read_placement(const field& f, placement& p) const {
  const mapping m =
      read_mapping(f, {"balance_factor", "overload_factor", "overload_after", "affinity_ttl",
                       "max_keys", "max_moves_per_second", "hash_key", "snapshot",
                       "snapshot_interval", "load_half_life", "return_after", "return_per_second"});
  if (const field* x = m.find("balance_factor"))
    p.balance_factor = read_double_in(*x, 1, false, 100);
  if (const field* x = m.find("overload_factor")) {
    p.overload_factor = read_double_in(*x, 1, false, 1000);
    if (p.overload_factor < p.balance_factor) {
      fail_value(*x, "must be >= balance_factor (" + format_number(p.balance_factor) + ")");
    }
  } else if (p.overload_factor < p.balance_factor) {
    // The default overload_factor (2.0) is below an explicit balance_factor: say which key.
    fail_value(*m.find("balance_factor"),
               "must be <= overload_factor (" + format_number(p.overload_factor) + ")");
  }
  if (const field* x = m.find("overload_after")) p.overload_after = read_duration(*x);
  if (const field* x = m.find("affinity_ttl")) p.affinity_ttl = read_duration(*x);
  if (const field* x = m.find("max_keys")) {
    p.max_keys = static_cast<std::size_t>(read_integer_in(*x, 1, 100'000'000));
  }
  if (const field* x = m.find("max_moves_per_second")) {
    p.max_moves_per_second = read_double_in(*x, 0, true, 1e6);
  }
  if (const field* x = m.find("hash_key")) p.hash_key = read_string(*x);
  if (const field* x = m.find("snapshot")) p.snapshot = read_string(*x);
  if (const field* x = m.find("snapshot_interval")) p.snapshot_interval = read_duration(*x);
  if (const field* x = m.find("load_half_life")) p.load_half_life = read_duration(*x);
  if (const field* x = m.find("return_after")) p.return_after = read_duration(*x);
  if (const field* x = m.find("return_per_second")) {
    p.return_per_second = read_double_in(*x, 0, false, 1e6);
  }
}

void loader::read_load(const field& f, load& l) const {
  const mapping m = read_mapping(f, {"scrape_interval",   "scrape_timeout",   "max_body_bytes",
                                     "ewma_alpha",        "hot_cpu",          "cool_cpu",
                                     "hot_reactor_lag",   "cool_reactor_lag", "down_after_failures",
                                     "stale_after",       "stall_down_after", "reactor_stall_after",
                                     "hot_in_flight",     "cool_in_flight",   "hot_db_busy",
                                     "cool_db_busy",      "capacity_knee",    "capacity_at_hot",
                                     "hot_capacity",      "haproxy_metrics",  "hot_latency_ratio",
                                     "cool_latency_ratio"});
  using std::chrono::milliseconds;
  if (const field* x = m.find("haproxy_metrics")) {
    l.haproxy_metrics = read_string(*x);
    if (!l.haproxy_metrics.empty() && !parse_http_url(l.haproxy_metrics))
      fail_value(*x, "expected http://HOST:PORT/PATH (HAProxy's prometheus-exporter)");
  }
  if (const field* x = m.find("scrape_interval")) {
    l.scrape_interval = read_duration(*x);
    if (l.scrape_interval < milliseconds{100}) fail_value(*x, "must be at least 100ms");
  }
  if (const field* x = m.find("scrape_timeout")) l.scrape_timeout = read_duration(*x);
  if (l.scrape_timeout >= l.scrape_interval) {
    // Report at the key the user wrote; with both written, the timeout is the one to shorten.
    const field* x = m.find("scrape_timeout");
    if (x != nullptr) {
      fail_value(*x,
                 "must be less than scrape_interval (" + format_duration(l.scrape_interval) + ")");
    }
    fail_value(*m.find("scrape_interval"),
               "must be more than scrape_timeout (" + format_duration(l.scrape_timeout) + ")");
  }
  if (const field* x = m.find("max_body_bytes")) {
    l.max_body_bytes = static_cast<std::size_t>(read_integer_in(*x, 1024, 256 * 1024 * 1024));
  }
  if (const field* x = m.find("ewma_alpha")) l.ewma_alpha = read_double_in(*x, 0, true, 1);
  if (const field* x = m.find("hot_cpu")) l.hot_cpu = read_double_in(*x, 0, true, 64);
  if (const field* x = m.find("cool_cpu")) l.cool_cpu = read_double_in(*x, 0, false, 64);
  if (l.cool_cpu > l.hot_cpu) {
    if (const field* x = m.find("cool_cpu")) {
      fail_value(*x, "must be <= hot_cpu (" + format_number(l.hot_cpu) + ")");
    }
    fail_value(*m.find("hot_cpu"), "must be >= cool_cpu (" + format_number(l.cool_cpu) + ")");
  }
  // Reactor lag is compared with a gauge in seconds, so it is kept as seconds.
  const auto seconds = [](milliseconds d) { return static_cast<double>(d.count()) / 1000.0; };
  if (const field* x = m.find("hot_reactor_lag")) l.hot_reactor_lag = seconds(read_duration(*x));
  if (const field* x = m.find("cool_reactor_lag")) {
    l.cool_reactor_lag = seconds(read_duration(*x));
  }
  if (l.cool_reactor_lag > l.hot_reactor_lag) {
    const auto ms = [](double s) { return milliseconds{std::llround(s * 1000.0)}; };
    if (const field* x = m.find("cool_reactor_lag")) {
      fail_value(*x, "must be <= hot_reactor_lag (" + format_duration(ms(l.hot_reactor_lag)) + ")");
    }
    fail_value(*m.find("hot_reactor_lag"),
               "must be >= cool_reactor_lag (" + format_duration(ms(l.cool_reactor_lag)) + ")");
  }
  if (const field* x = m.find("down_after_failures")) {
    l.down_after_failures = static_cast<int>(read_integer_in(*x, 1, 1000));
  }
  if (const field* x = m.find("stale_after")) l.stale_after = read_duration(*x);
  // Data is only refreshed every scrape_interval; staler-than-that would flap every worker.
  if (l.stale_after < l.scrape_interval) {
    if (const field* x = m.find("stale_after")) {
      fail_value(*x,
                 "must be at least scrape_interval (" + format_duration(l.scrape_interval) + ")");
    }
    fail_value(*m.find("scrape_interval"),
               "must be at most stale_after (" + format_duration(l.stale_after) + ")");
  }
  if (const field* x = m.find("stall_down_after")) l.stall_down_after = read_duration(*x);
  // Shorter, and the first timed-out scrape would already be "down": no stalled warning first.
  if (l.stall_down_after <= l.scrape_interval + l.scrape_timeout) {
    const std::string sum = format_duration(l.scrape_interval + l.scrape_timeout);
    if (const field* x = m.find("stall_down_after")) {
      fail_value(*x, "must be more than scrape_interval + scrape_timeout (" + sum + ")");
    }
    const field* x = m.find("scrape_timeout");
    fail_value(x ? *x : *m.find("scrape_interval"), "scrape_interval + scrape_timeout (" + sum +
                                                        ") must be less than stall_down_after (" +
                                                        format_duration(l.stall_down_after) + ")");
  }
  if (const field* x = m.find("reactor_stall_after")) l.reactor_stall_after = read_duration(*x);
  if (const field* x = m.find("hot_in_flight")) l.hot_in_flight = read_double_in(*x, 0, false, 1e6);
  if (const field* x = m.find("cool_in_flight")) {
    l.cool_in_flight = read_double_in(*x, 0, false, 1e6);
    if (l.hot_in_flight > 0 && l.cool_in_flight > l.hot_in_flight)
      fail_value(*x, "must be <= hot_in_flight (" + format_number(l.hot_in_flight) + ")");
  }
  if (const field* x = m.find("hot_db_busy")) l.hot_db_busy = read_double_in(*x, 0, false, 1);
  if (const field* x = m.find("cool_db_busy")) {
    l.cool_db_busy = read_double_in(*x, 0, false, 1);
    if (l.hot_db_busy > 0 && l.cool_db_busy > l.hot_db_busy)
      fail_value(*x, "must be <= hot_db_busy (" + format_number(l.hot_db_busy) + ")");
  }
  if (const field* x = m.find("capacity_knee"))
    l.capacity_knee = read_double_in(*x, 0, false, 0.99);
  if (const field* x = m.find("capacity_at_hot")) {
    l.capacity_at_hot = read_double_in(*x, 0, true, 1);
  }
  if (const field* x = m.find("hot_capacity")) l.hot_capacity = read_double_in(*x, 0, true, 1);
  if (const field* x = m.find("hot_latency_ratio")) {
    l.hot_latency_ratio = read_double_in(*x, 0, false, 1000);
    if (l.hot_latency_ratio > 0 && l.hot_latency_ratio <= 1)
      fail_value(*x, "must be more than 1 (a ratio to the pool's response time), or 0 = not used");
  }
  if (const field* x = m.find("cool_latency_ratio")) {
    l.cool_latency_ratio = read_double_in(*x, 0, false, 1000);
    if (l.hot_latency_ratio > 0 && l.cool_latency_ratio > l.hot_latency_ratio)
      fail_value(*x, "must be <= hot_latency_ratio (" + format_number(l.hot_latency_ratio) + ")");
  }
}

void loader::read_spop(const field& f, spop& s) const {
  const mapping m = read_mapping(f, {"max_frame_size", "idle_timeout", "hello_timeout",
                                     "max_connections", "max_pipelined", "allow_from"});
  // 256: room for a HELLO with its capabilities; 65532: 64 KiB minus the 4-byte length, a
  // bound that keeps a connection's buffer small whatever HAProxy announces.
  if (const field* x = m.find("max_frame_size")) {
    s.max_frame_size = static_cast<std::uint32_t>(read_integer_in(*x, 256, 65532));
  }
  if (const field* x = m.find("idle_timeout")) s.idle_timeout = read_duration(*x);
  if (const field* x = m.find("hello_timeout")) s.hello_timeout = read_duration(*x);
  if (const field* x = m.find("max_connections")) {
    s.max_connections = static_cast<std::size_t>(read_integer_in(*x, 1, 1'000'000));
  }
  if (const field* x = m.find("max_pipelined")) {
    s.max_pipelined = static_cast<std::size_t>(read_integer_in(*x, 1, 65536));
  }
  if (const field* x = m.find("allow_from")) {
    for (const field& item : read_sequence(*x)) {
      const std::string a = read_string(item);
      if (!is_address_or_cidr(a))
        fail_value(item, "expected an IP address or CIDR like 10.0.0.0/8");
      s.allow_from.push_back(a);
    }
  }
}

void loader::read_shared(const field& f, shared& s) const {
  const mapping m = read_mapping(
      f, {"redis", "key_prefix", "user", "password_file", "password_env", "connect_timeout",
          "command_timeout", "refresh_interval", "reconnect_interval", "load_interval"});
  if (const field* x = m.find("redis")) {
    s.redis = read_string(*x);
    if (!s.redis.empty() && !parse_redis_url(s.redis)) {
      fail_value(*x, "expected redis://HOST:PORT or redis://HOST:PORT/DB (DB 0..15)");
    }
  }
  if (const field* x = m.find("key_prefix")) {
    s.key_prefix = read_string(*x);
    if (s.key_prefix.size() > 64) fail_value(*x, "must be at most 64 characters");
    for (const char c : s.key_prefix) {
      if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
        fail_value(*x, "must be printable ASCII without spaces");
    }
  }
  if (const field* x = m.find("user")) s.user = read_string(*x);
  if (const field* x = m.find("password_file")) s.password_file = read_string(*x);
  if (const field* x = m.find("password_env")) s.password_env = read_string(*x);
  if (!s.password_file.empty() && !s.password_env.empty())
    fail_value(*m.find("password_env"), "give password_file or password_env, not both");
  using std::chrono::milliseconds;
  const auto at_least = [&](const char* key, milliseconds& v, milliseconds lo) {
    if (const field* x = m.find(key)) {
      v = read_duration(*x);
      if (v < lo) fail_value(*x, "must be at least " + format_duration(lo));
    }
  };
  at_least("connect_timeout", s.connect_timeout, milliseconds{10});
  at_least("command_timeout", s.command_timeout, milliseconds{10});
  at_least("refresh_interval", s.refresh_interval, milliseconds{100});
  at_least("reconnect_interval", s.reconnect_interval, milliseconds{10});
  at_least("load_interval", s.load_interval, milliseconds{100});
}

void loader::read_control(const field& f, control& c) const {
  const mapping m = read_mapping(f, {"socket", "mode"});
  if (const field* x = m.find("socket")) {
    c.socket = read_string(*x);
    if (!c.socket.empty() && c.socket.front() != '/')
      fail_value(*x, "expected an absolute path (or \"\" for no control socket)");
    if (c.socket.size() > 107) fail_value(*x, "must be at most 107 bytes (a Unix socket path)");
  }
  if (const field* x = m.find("mode")) {
    const std::string v = read_string(*x);
    unsigned mode = 0;
    bool ok = v.size() >= 3 && v.size() <= 4 && v.front() == '0';
    for (const char ch : v)
      ok = ok && ch >= '0' && ch <= '7';
    if (ok) mode = static_cast<unsigned>(std::stoul(v, nullptr, 8));
    if (!ok || mode > 0777) fail_value(*x, "expected an octal file mode in quotes, like \"0660\"");
    c.mode = mode;
  }
}

void loader::read_responses(const field& f, responses& r) const {
  const mapping m =
      read_mapping(f, {"latency_decay", "latency_floor", "latency_min_samples", "misroute_interval",
                       "misroute_min_errors", "misroute_factor"});
  using std::chrono::milliseconds;
  if (const field* x = m.find("latency_decay")) {
    r.latency_decay = read_duration(*x);
    if (r.latency_decay < milliseconds{100}) fail_value(*x, "must be at least 100ms");
  }
  if (const field* x = m.find("latency_floor")) {
    r.latency_floor = static_cast<double>(read_duration(*x).count()) / 1000.0;
    if (r.latency_floor <= 0) fail_value(*x, "must be more than 0");
  }
  if (const field* x = m.find("latency_min_samples"))
    r.latency_min_samples = read_double_in(*x, 1, false, 1e6);
  if (const field* x = m.find("misroute_interval")) {
    r.misroute_interval = read_duration(*x);
    if (r.misroute_interval < milliseconds{1000}) fail_value(*x, "must be at least 1s");
  }
  if (const field* x = m.find("misroute_min_errors"))
    r.misroute_min_errors = read_double_in(*x, 1, false, 1e9);
  if (const field* x = m.find("misroute_factor"))
    r.misroute_factor = read_double_in(*x, 1, false, 1e6);
}

}  // namespace spoa::config::detail
